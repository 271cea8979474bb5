//! Self-tests of every fixture against the real services of this machine.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fleetwatch_testkit::server::{Server, run_cli_bin};
use fleetwatch_testkit::{mosquitto, postgres, tansu};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[test]
fn temp_dir_is_removed_with_its_guard() {
    let dir = fleetwatch_testkit::temp_dir();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("f"), b"x").unwrap();
    drop(dir);
    assert!(!path.exists());
}

#[test]
fn tansu_answers_the_kafka_protocol_and_is_shared() {
    let a = tansu::bootstrap();
    assert_eq!(a, tansu::bootstrap(), "one broker per process");
    tansu::api_versions(a.parse().unwrap()).unwrap();
}

#[test]
fn mosquitto_accepts_a_connect_and_prefixes_are_unique() {
    let m = mosquitto::mosquitto();
    mosquitto::connect(m.addr).unwrap();
    let other = mosquitto::mosquitto();
    assert_eq!(m.addr, other.addr);
    assert_ne!(m.prefix, other.prefix);
    assert!(m.topic("t").starts_with(&m.prefix));
}

#[test]
fn a_private_mosquitto_is_started_on_a_free_port() {
    let m = mosquitto::private();
    assert!(m.own);
    assert_ne!(m.addr.port(), 1883);
    mosquitto::connect(m.addr).unwrap();
}

#[test]
fn postgres_database_is_created_usable_and_dropped() {
    let db = postgres::database();
    let out = std::process::Command::new("psql")
        .arg(db.url())
        .args(["-X", "-At", "-c", "SELECT current_database()"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), db.name());
    assert_eq!(db.psql("SELECT 1 + 1").unwrap().trim(), "2");
    let name = db.name().to_string();
    drop(db);
    let probe = postgres::database();
    let left = probe
        .psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        ))
        .unwrap();
    assert_eq!(left.trim(), "0", "{name} was not dropped");
}

/// A stand-in for `fleetwatch`: writes a ready file with three listeners and waits.
fn fake_fleetwatch(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("fake-fleetwatch");
    std::fs::write(
        &bin,
        r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --ready-file) ready="$2"; shift ;;
    --version) echo "fake 0"; exit 0 ;;
  esac
  shift
done
[ -n "$ready" ] || { cat; echo "no serve" >&2; exit 3; }
# The trap first: a TERM right after the ready file must still end with status 0.
trap 'exit 0' TERM
printf '{"http":"127.0.0.1:1111","mqtt":"127.0.0.1:3333","schema_registry":"127.0.0.1:2222"}' > "$ready.tmp"
mv "$ready.tmp" "$ready"
while :; do sleep 0.1; done
"#,
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn server_reads_every_listener_from_the_ready_file() {
    let dir = fleetwatch_testkit::temp_dir();
    let bin = fake_fleetwatch(dir.path());
    let s = Server::start_bin(&bin, &dir.path().join("data"), &["--set", "a=b"], &[]);
    assert_eq!(s.base, "http://127.0.0.1:1111");
    assert_eq!(s.registry, "http://127.0.0.1:2222");
    assert_eq!(s.url("/x"), "http://127.0.0.1:1111/x");
    assert_eq!(s.addr("mqtt").port(), 3333);
    assert_eq!(s.listeners.len(), 3);
    assert!(s.stop().success());
    let s = Server::start_bin(&bin, &dir.path().join("data"), &[], &[]);
    s.kill();
    let (ok, out, err) = run_cli_bin(&bin, dir.path(), &["topics", "list"], "piped");
    assert!(!ok);
    assert_eq!(out, "piped");
    assert!(err.contains("no serve"));
}
