//! Integration tests of the embedded log: the shared `Log` conformance suite, recovery,
//! retention and fault injection.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod conformance;
mod faults;
mod recovery;
