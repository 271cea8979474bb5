//! # fleetwatch — the application
//!
//! Wires the library crates together: config loading, the HTTP server (REST Proxy API),
//! metrics, the CLI commands and the benchmarks; `main.rs` only parses arguments. It owns
//! no storage or protocol logic of its own and must stay a thin assembly of the crates
//! below it (see `ARCHITECTURE.md`).

pub mod backend;
pub mod bench;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod models;
pub mod ops;
pub mod remote;
pub mod serve;
pub mod sim;
