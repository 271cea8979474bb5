//! An MQTT broker for tests (Mosquitto), and topic prefixes unique to each test.
//!
//! [`mosquitto()`] returns an address that answers an MQTT 3.1.1 CONNECT with an accepting
//! CONNACK, found once per test process, in this order:
//! 1. `FLEETWATCH_MQTT` (`host:port`), when set: it must answer, else a panic;
//! 2. the machine's broker on 127.0.0.1:1883, if it answers (these machines run one);
//! 3. a `mosquitto` of its own (Debian package `mosquitto`) on a free loopback port, with
//!    anonymous access, stopped by a watchdog when the test process exits;
//! 4. else a panic naming the package.
//!
//! Tests may share the machine's broker with other test processes: publish and subscribe only
//! under [`Mqtt::prefix`] (or [`Mqtt::topic`]), which no other test gets.

use crate::process::spawn_watched;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The broker's address and a topic prefix unique to this handle.
#[derive(Debug, Clone)]
pub struct Mqtt {
    /// `host:port` of a broker that answered CONNECT.
    pub addr: SocketAddr,
    /// `true` when the testkit started this broker itself (not the machine's).
    pub own: bool,
    /// `fwtest/<pid>-<n>/`: every topic of this test starts with it.
    pub prefix: String,
}

impl Mqtt {
    /// `<prefix><name>`: a topic no other test uses.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `host:port` as a string, for clients that take one.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

/// The process's MQTT broker (found or started on first use) with a fresh topic prefix.
pub fn mosquitto() -> Mqtt {
    static BROKER: OnceLock<(SocketAddr, bool)> = OnceLock::new();
    let &(addr, own) = BROKER.get_or_init(find_or_start);
    Mqtt {
        addr,
        own,
        prefix: format!("fwtest/{}/", crate::unique_suffix()),
    }
}

fn find_or_start() -> (SocketAddr, bool) {
    if let Ok(a) = std::env::var("FLEETWATCH_MQTT") {
        let addr = a
            .to_socket_addrs()
            .ok()
            .and_then(|mut i| i.next())
            .unwrap_or_else(|| panic!("FLEETWATCH_MQTT={a:?} is not a host:port"));
        if let Err(e) = connect(addr) {
            panic!("FLEETWATCH_MQTT={a:?} does not answer MQTT CONNECT: {e}");
        }
        return (addr, false);
    }
    let machine = SocketAddr::from(([127, 0, 0, 1], 1883));
    if connect(machine).is_ok() {
        return (machine, false);
    }
    (start_own(), true)
}

fn mosquitto_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// A broker of its own for this caller (never the machine's), e.g. for a test that stops or
/// floods it; started like step 3 of the module doc, stopped when the test process exits.
pub fn private() -> Mqtt {
    private_with("")
}

/// Like [`private`], with more of Mosquitto's configuration after the anonymous plain
/// listener that [`Mqtt::addr`] names (`per_listener_settings` is on, so `extra` can add
/// e.g. a TLS listener with its own `password_file`). Run as root it stays root (`user
/// root`), so it can read files in the caller's private temp directories.
pub fn private_with(extra: &str) -> Mqtt {
    Mqtt {
        addr: start_own_with(extra),
        own: true,
        prefix: format!("fwtest/{}/", crate::unique_suffix()),
    }
}

fn start_own() -> SocketAddr {
    start_own_with("")
}

fn start_own_with(extra: &str) -> SocketAddr {
    let Some(bin) = mosquitto_bin() else {
        panic!(
            "no MQTT broker: nothing answers on 127.0.0.1:1883 and no `mosquitto` binary is \
             installed (Debian package `mosquitto`), or set FLEETWATCH_MQTT to a broker's host:port"
        );
    };
    let addr = crate::free_addr();
    let conf = std::env::temp_dir().join(format!("fleetwatch-mosquitto-{}.conf", addr.port()));
    let log = conf.with_extension("log");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\npersistence false\nuser root\nlistener {} 127.0.0.1\nallow_anonymous true\n{extra}\n",
            addr.port()
        ),
    )
    .expect("writing the mosquitto config");
    // The watchdog removes the config once the broker is stopped; the log stays for a look.
    spawn_watched(&bin, &["-c", &conf.to_string_lossy()], &log, &[&conf]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match connect(addr) {
            Ok(()) => return addr,
            Err(e) => assert!(
                Instant::now() < deadline,
                "mosquitto did not answer CONNECT on {addr} within 20 s ({e}); see {}",
                log.display()
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends an MQTT 3.1.1 CONNECT (clean session, a unique client id) and expects CONNACK with
/// return code 0, then DISCONNECTs.
pub fn connect(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .and_then(|()| s.set_write_timeout(Some(Duration::from_secs(5))))
        .map_err(|e| e.to_string())?;
    let client = format!("fwtest-{}", crate::unique_suffix());
    let mut var = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c];
    var.extend_from_slice(&(client.len() as u16).to_be_bytes());
    var.extend_from_slice(client.as_bytes());
    // remaining length < 128: one byte
    let mut packet = vec![0x10, var.len() as u8];
    packet.extend_from_slice(&var);
    s.write_all(&packet)
        .map_err(|e| format!("send CONNECT: {e}"))?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack)
        .map_err(|e| format!("read CONNACK: {e}"))?;
    if ack[0] != 0x20 || ack[1] != 0x02 {
        return Err(format!("not a CONNACK: {ack:02x?}"));
    }
    if ack[3] != 0 {
        return Err(format!("CONNACK refused with return code {}", ack[3]));
    }
    let _ = s.write_all(&[0xe0, 0x00]);
    Ok(())
}
