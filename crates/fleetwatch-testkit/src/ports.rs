//! Free loopback ports.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// It binds `127.0.0.1:0`, reads the port the kernel chose and releases it. **Race:** between
/// the release and the moment the process under test binds it, anything else on the machine
/// (another test binary, another fixture) may take the same port. The kernel hands out
/// ephemeral ports round-robin, so this is rare, but a bind failure on a port from here is a
/// test-environment flake, not a product bug. Prefer port 0 plus a ready file where the
/// process supports it (`fleetwatch serve --ready-file` does); use this only for processes
/// that must be told their port (tansu, Mosquitto).
pub fn free_port() -> u16 {
    free_addr().port()
}

/// `127.0.0.1:<port>` that was free a moment ago; see [`free_port`] for the race.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0 to find a free port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_can_be_bound() {
        let a = free_addr();
        assert!(a.ip().is_loopback());
        assert_ne!(a.port(), 0);
        TcpListener::bind(a).expect("the port was free a moment ago");
        assert_ne!(free_port(), 0);
    }
}
