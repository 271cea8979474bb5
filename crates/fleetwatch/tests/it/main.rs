//! Black-box tests of the `fleetwatch` binary: the CLI, the HTTP API (REST Proxy shapes and
//! errors), metrics, and a SIGKILL loop under produce load.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod cli;
mod hardening;
mod ingest;
#[cfg(feature = "kafka")]
mod kafka_backend;
mod kill_loop;
mod ksql;
mod model;
mod mqtt;
mod rest;
mod schema_registry;
mod sim;
mod sql_cli;
