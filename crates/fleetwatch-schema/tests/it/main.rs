//! Schema registry tests: the compatibility matrix, and the registry's behaviour over a real
//! embedded log (ids, versions, deletes, config, modes, references, restart, followers).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod compat_matrix;
mod decode_timing;
mod hardening;
mod http;
mod registry;
