//! ksqlDB's `KAFKA` format: one scalar column, the value's bytes as Kafka's own serializers
//! write them.

use crate::builder::{Allowed, Columns, Kind};
use crate::error::{FormatError, RowError};
use crate::view::{Sql, View, sql_of};
use crate::{RowDecoder, RowEncoder};
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

/// Decodes ksqlDB `KAFKA`-format values: `STRING` is the UTF-8 bytes, `INT` 4 bytes and
/// `BIGINT` 8 bytes big-endian, `DOUBLE` 8 bytes big-endian IEEE-754, `BYTES` the raw bytes.
pub struct KafkaDecoder {
    cols: Columns,
}

fn check(schema: &Schema) -> Result<Sql, FormatError> {
    if schema.fields().len() != 1 {
        return Err(FormatError::Schema(format!(
            "the KAFKA format has exactly one column, the schema has {}",
            schema.fields().len()
        )));
    }
    let f = &schema.fields()[0];
    match sql_of(f.data_type()) {
        Some(s @ (Sql::String | Sql::Int | Sql::BigInt | Sql::Double | Sql::Bytes)) => Ok(s),
        _ => Err(FormatError::UnsupportedType {
            column: f.name().clone(),
            data_type: f.data_type().to_string(),
            format: "KAFKA",
        }),
    }
}

impl KafkaDecoder {
    /// A decoder for a schema of one `STRING`, `INT`, `BIGINT`, `DOUBLE` or `BYTES` column.
    ///
    /// # Errors
    /// Not exactly one column, or a column of another type.
    pub fn new(schema: SchemaRef) -> Result<Self, FormatError> {
        let cols = Columns::new(&schema, Allowed::Scalars, "KAFKA")?;
        check(&cols.schema)?;
        Ok(KafkaDecoder { cols })
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.cols.schema.clone()
    }
}

fn fixed<const N: usize>(value: &[u8], what: &str) -> Result<[u8; N], RowError> {
    value.try_into().map_err(|_| {
        RowError::new(format!(
            "a KAFKA-format {what} is {N} bytes, the value has {}",
            value.len()
        ))
    })
}

impl RowDecoder for KafkaDecoder {
    fn append(&mut self, value: &[u8]) -> Result<(), RowError> {
        let col = &mut self.cols.row.cols[0];
        let r = match &mut col.kind {
            Kind::Str { data, .. } => match std::str::from_utf8(value) {
                Ok(_) => {
                    data.extend_from_slice(value);
                    col.close_bytes()
                }
                Err(e) => Err(RowError::new(format!(
                    "invalid UTF-8 at byte {}",
                    e.valid_up_to()
                ))),
            },
            Kind::Bin { data, .. } => {
                data.extend_from_slice(value);
                col.close_bytes()
            }
            Kind::Int(v) => fixed::<4>(value, "INT").map(|b| {
                v.push(i32::from_be_bytes(b));
                col.valid.append(true);
            }),
            Kind::BigInt(v) => fixed::<8>(value, "BIGINT").map(|b| {
                v.push(i64::from_be_bytes(b));
                col.valid.append(true);
            }),
            Kind::Double(v) => fixed::<8>(value, "DOUBLE").map(|b| {
                v.push(f64::from_be_bytes(b));
                col.valid.append(true);
            }),
            _ => Err(RowError::new("internal: type not of the KAFKA format")),
        }
        .map_err(|e| e.within(&col.name));
        self.cols.commit(r)
    }

    fn append_null(&mut self) {
        self.cols.push_null_row();
    }

    fn len(&self) -> usize {
        self.cols.rows
    }

    fn finish(&mut self) -> RecordBatch {
        self.cols.finish()
    }
}

/// Encodes one-column batches in ksqlDB's `KAFKA` format (the inverse of [`KafkaDecoder`]);
/// also accepts the narrower integers (as `INT`), `UInt32`/`UInt64` (as `BIGINT`), `Float32`
/// (as `DOUBLE`) and the other string and binary types. A null value cannot be written (it
/// is a record without a value, which a byte buffer cannot express): it is an error.
#[derive(Debug, Default)]
pub struct KafkaEncoder;

impl KafkaEncoder {
    /// An encoder.
    pub fn new() -> Self {
        KafkaEncoder
    }
}

impl RowEncoder for KafkaEncoder {
    fn encode(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<(), FormatError> {
        let schema = batch.schema();
        let sql = check(&schema)?;
        let name = schema.fields()[0].name();
        let v = View::new(batch.column(0).as_ref(), name, "KAFKA")?;
        let bad = |row: usize, message: &str| FormatError::Value {
            column: name.clone(),
            row,
            message: message.to_owned(),
        };
        for i in 0..batch.num_rows() {
            if v.is_null(i) {
                return Err(bad(i, "the KAFKA format cannot write a null value"));
            }
            match sql {
                Sql::Int => {
                    let x = v.int(i).and_then(|x| i32::try_from(x).ok());
                    let x = x.ok_or_else(|| bad(i, "value out of the range of INT"))?;
                    out.extend_from_slice(&x.to_be_bytes());
                }
                Sql::BigInt => {
                    let x = v
                        .int(i)
                        .ok_or_else(|| bad(i, "value out of the range of BIGINT"))?;
                    out.extend_from_slice(&x.to_be_bytes());
                }
                Sql::Double => {
                    out.extend_from_slice(&v.double(i).unwrap_or(f64::NAN).to_be_bytes());
                }
                _ => out.extend_from_slice(v.bytes(i).unwrap_or_default()),
            }
            ends.push(out.len());
        }
        Ok(())
    }
}
