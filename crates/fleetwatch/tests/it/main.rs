//! Black-box tests of the `fleetwatch` binary: the CLI, the HTTP API (REST Proxy shapes and
//! errors), metrics, and a SIGKILL loop under produce load.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../../fleetwatch-kafka/tests/it/broker.rs"]
mod broker;
mod cli;
mod hardening;
mod kafka_backend;
mod kill_loop;
mod rest;
mod schema_registry;
mod server;
