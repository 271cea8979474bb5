//! Integration tests of the Kafka backend against a real Kafka-protocol broker (tansu,
//! one per test process, from `fleetwatch-testkit`), and against Python `confluent-kafka` for interoperability.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod conformance;
mod interop;
mod readers;
