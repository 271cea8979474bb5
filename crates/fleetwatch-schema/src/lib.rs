//! # fleetwatch-schema — a Confluent-compatible Schema Registry
//!
//! Owns schemas and their evolution: parsing Avro (`apache-avro`) and JSON Schema
//! (`jsonschema`), the identity of a schema, compatibility rules for every level, the
//! registry's state stored in the internal `_schemas` topic (replayed at start, so ids are
//! stable and replicate with the log), the REST API with Confluent's paths, bodies and error
//! codes (`http`), and the wire format (magic byte 0 + 4-byte schema id).
//!
//! Sans-IO cores: the Avro datum reader with its nesting limit (`datum`, [`datum::MAX_DEPTH`]
//! levels for Avro decode, Avro ↔ JSON and JSON Schema documents alike), the conversions
//! (`codec`), the compatibility rules (`avro`, `json_schema`, `compat`), and inside the
//! registry the `_schemas` record format and the replayed state machine; the registry's
//! driver (replay, tailing, leader writes) is a thin async layer around them.
//!
//! It stands on `fleetwatch_core::Log` only: it must not know which backend holds
//! `_schemas`, nor anything of SQL, ML or ingestion.

pub mod avro;
pub mod codec;
pub mod compat;
pub mod datum;
mod error;
pub mod http;
pub mod json_schema;
mod registry;
pub mod types;
pub mod wire;

pub use error::{RegistryError, RegistryResult};
pub use registry::{Registry, SchemaRegistryConfig};
