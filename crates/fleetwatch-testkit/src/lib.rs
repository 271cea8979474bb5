//! # fleetwatch-testkit — the fixtures of fleetwatch's tests (dev-only)
//!
//! A normal workspace crate that every other crate uses **only as a `[dev-dependencies]`
//! entry**; nothing in a `src/` tree may depend on it, and it is never published.
//!
//! It owns:
//! - [`free_port`] / [`free_addr`]: loopback ports for processes a test starts;
//! - [`temp_dir`]: temporary directories as [`TempDir`] guards, held by whoever uses them
//!   (a fixture keeps its own for its lifetime; nothing is leaked with `mem::forget`);
//! - [`tansu`]: one Kafka-protocol broker (tansu) per test process, stopped when it exits;
//! - [`mosquitto`]: an MQTT broker address (the machine's, or one started for the process)
//!   and topic prefixes unique to each test;
//! - [`postgres`]: a fresh PostgreSQL database per test, dropped with its guard;
//! - [`server`]: `fleetwatch serve` on free ports found through `--ready-file`, and the CLI;
//! - [`conformance`]: the `Log` conformance macro ([`log_conformance_tests!`]) and fixture
//!   constructors for the embedded log (feature `embedded`) and the Kafka backend on the
//!   tansu fixture (feature `kafka`).
//!
//! It must not know the internals of what it starts: it talks to processes through their
//! command lines, ready files and wire protocols, and to backends through their public
//! `*Config::build()`. Assertions belong to the tests, not here; a fixture only panics, with a
//! message naming what is missing and how to get it (`.ci/run` installs everything).
//!
//! External processes (tansu, Mosquitto) are started under a small `sh` watchdog that kills
//! them once the test process is gone, so `cargo test` leaves no broker behind, even when a
//! test binary panics or is killed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
pub mod mosquitto;
pub mod postgres;
pub mod server;
pub mod tansu;

mod ports;
mod process;

pub use ports::{free_addr, free_port};
pub use tempfile::TempDir;

/// Re-export of [`fleetwatch_core::log_conformance_tests!`]: one `#[tokio::test]` per check of
/// the `Log` conformance suite. The maker may return a [`conformance::HeldFixture`] (it derefs
/// to the core `Fixture`), so what the log lives on is owned for the test's duration.
pub use fleetwatch_core::log_conformance_tests;

/// A fresh temporary directory (`fleetwatch-test-*` under the system temp dir), removed when
/// the returned guard drops. Hold the guard for as long as anything uses the directory.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("fleetwatch-test-")
        .tempdir()
        .expect("creating a temporary directory")
}

/// A name unique in this process and across concurrently running test processes:
/// `<pid>-<counter>`; usable in topic, database and client names.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
