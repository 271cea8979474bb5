//! Starting external processes that must not outlive the test process.

use std::path::Path;
use std::process::{Command, Stdio};

/// Quotes `s` for `sh`.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Starts `program args…` in the background with stdout and stderr to `log`, under a `sh`
/// watchdog that polls this process every 0.5 s and kills the program once this process is
/// gone (normal exit, panic or SIGKILL alike). The watchdog shell is a child of this process
/// and ends with it; nothing is left to reap. The files in `remove_after` are removed once the
/// program is stopped.
pub(crate) fn spawn_watched(program: &Path, args: &[&str], log: &Path, remove_after: &[&Path]) {
    let me = std::process::id();
    let mut line = sh_quote(&program.to_string_lossy());
    for a in args {
        line.push(' ');
        line.push_str(&sh_quote(a));
    }
    let mut rm = String::new();
    for f in remove_after {
        rm.push_str("; rm -f ");
        rm.push_str(&sh_quote(&f.to_string_lossy()));
    }
    let script = format!(
        "{line} >{log} 2>&1 & b=$!; \
         while kill -0 {me} 2>/dev/null && kill -0 $b 2>/dev/null; do sleep 0.5; done; \
         kill $b 2>/dev/null{rm}",
        log = sh_quote(&log.to_string_lossy()),
    );
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {} under a watchdog: {e}", program.display()));
}

#[cfg(test)]
mod tests {
    use super::sh_quote;

    #[test]
    fn quotes_for_sh() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }
}
