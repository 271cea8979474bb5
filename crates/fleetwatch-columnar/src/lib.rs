//! Row formats ⇄ Apache Arrow record batches: the formats-layer piece that the streaming SQL
//! engine and ML training use to turn log record values into Arrow columns and back.
//!
//! It owns, for ksqlDB's four value formats (`JSON`, `DELIMITED`, `KAFKA`, `AVRO`):
//!
//! - the fixed mapping of ksqlDB SQL types to Arrow types (below), checked once when a codec is
//!   built (any other Arrow type is a [`FormatError`] naming the column);
//! - **decoders** ([`RowDecoder`]): one record value at a time, appended to reusable column
//!   builders, [`RowDecoder::finish`] yielding a [`RecordBatch`]. Rows are atomic: a value that
//!   fails leaves the batch exactly as it was, and the [`RowError`] names the column path
//!   (`LOC->LAT`) and what was wrong;
//! - **encoders** ([`RowEncoder`]): a whole batch at a time into one caller buffer plus the end
//!   offset of every row, so rows are sliced without one `Vec` per row;
//! - the Avro schema a batch is written with ([`avro_schema_for`], ksqlDB's naming) and the
//!   columns ksqlDB infers from a registry schema ([`arrow_schema_from_avro`]).
//!
//! | SQL type | Arrow type |
//! |---|---|
//! | `BOOLEAN` | `Boolean` |
//! | `INT` | `Int32` |
//! | `BIGINT` | `Int64` |
//! | `DOUBLE` | `Float64` |
//! | `DECIMAL(p, s)` | `Decimal128(p, s)` |
//! | `STRING` | `Utf8` |
//! | `BYTES` | `Binary` |
//! | `TIMESTAMP` | `Timestamp(Millisecond, None)` |
//! | `DATE` | `Date32` |
//! | `TIME` | `Time32(Millisecond)` |
//! | `ARRAY<T>` | `List` (item field nullable) |
//! | `MAP<STRING, V>` | `Map` (entries `{key: Utf8 non-null, value: V nullable}`, unsorted) |
//! | `STRUCT<…>` | `Struct` |
//!
//! Every column and nested field is nullable: a decoder's batch has the given schema with every
//! field made nullable (map keys excepted). Encoders also accept the wider types SQL expressions
//! may yield (`Int8`, `Int16`, unsigned integers, `Float32`, `LargeUtf8`, `Utf8View`,
//! `LargeBinary`, timestamps and times of other units, converted to milliseconds).
//!
//! Hot paths are hand-written: the JSON decoder is a byte scanner that writes straight into the
//! column buffers (no `serde_json::Value`, no `String` per field, column lookup without
//! allocation); the Avro decoder walks a plan compiled once from the writer schema (no
//! `apache_avro::types::Value` per row). `apache-avro` is used to parse schemas only, and
//! `serde_json` only on cold paths.
//!
//! This crate is pure synchronous code (sans-IO). It must not know the log, records, topics,
//! the schema registry (callers strip the Confluent wire header and look schemas up), SQL, or
//! any runtime.

mod avro_dec;
mod avro_enc;
mod builder;
mod delimited;
mod error;
mod json_dec;
mod json_enc;
mod kafka;
mod num;
mod text;
mod view;

pub use arrow_array::RecordBatch;
pub use avro_dec::{AvroDecoder, arrow_schema_from_avro};
pub use avro_enc::{AvroEncoder, avro_schema_for};
pub use delimited::{DelimitedDecoder, DelimitedEncoder};
pub use error::{FormatError, RowError};
pub use json_dec::{JsonDecoder, JsonOptions};
pub use json_enc::JsonEncoder;
pub use kafka::{KafkaDecoder, KafkaEncoder};

/// Turns record values, one at a time, into the rows of a [`RecordBatch`].
///
/// Contract: [`append`](Self::append) either adds exactly one row to every column or, when it
/// returns an error, changes nothing (no partial row). [`finish`](Self::finish) hands out the
/// rows appended since the last `finish` and leaves the decoder empty, ready for reuse.
pub trait RowDecoder {
    /// Decodes one record value and appends it as a row.
    ///
    /// # Errors
    /// The value is not a valid row of the schema in this format; nothing was appended.
    fn append(&mut self, value: &[u8]) -> Result<(), RowError>;
    /// Appends a row whose every column is null (a record without a value, a tombstone).
    fn append_null(&mut self);
    /// Rows appended since the last [`finish`](Self::finish).
    fn len(&self) -> usize;
    /// Whether no row was appended since the last [`finish`](Self::finish).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows appended so far as one batch; the decoder is empty afterwards.
    fn finish(&mut self) -> RecordBatch;
}

/// Turns the rows of a [`RecordBatch`] into record values.
pub trait RowEncoder {
    /// Appends each row's bytes to `out` and pushes the end offset (in `out`) of each row to
    /// `ends`; row `i` is `out[ends[i - 1]..ends[i]]` (starting at the length `out` had before).
    ///
    /// # Errors
    /// A column of a type this format cannot write, or a value it cannot represent. `out` and
    /// `ends` may then hold the rows before the failing one.
    fn encode(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<(), FormatError>;
}

#[cfg(test)]
mod tests;
