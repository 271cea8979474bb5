//! fleetwatch's streaming SQL, in the ksqlDB dialect.
//!
//! It owns: parsing ksqlDB statements ([`parser`]), ksqlDB's types over Arrow ([`types`]),
//! the catalog of streams and tables, planning a `SELECT` with DataFusion into physical
//! expressions evaluated on Arrow record batches, the UDF registry (ksqlDB's functions, PII
//! functions from `fleetwatch-pii`), persistent queries (stored in a command topic,
//! checkpointed, effectively once) and push queries, and the ksqlDB-compatible REST API.
//!
//! It must not know: how the log stores records (only the `Log` trait), how models are
//! trained, or anything of the other network protocols.

pub mod catalog;
pub mod config;
pub mod engine;
pub mod error;
pub mod exec;
pub mod functions;
pub mod metrics;
pub mod parser;
pub mod plan;
pub mod query;
pub mod rest;
pub mod types;

/// Locks a mutex; a poisoned one (a panic while it was held) is used as it is — the
/// project's rule for state that stays consistent between statements.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
