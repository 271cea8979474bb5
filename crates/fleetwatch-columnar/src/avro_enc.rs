//! The Avro encoder and the schema it writes with, in ksqlDB's style.

use crate::RowEncoder;
use crate::error::FormatError;
use crate::view::{Sql, View, range, sql_of};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use serde_json::{Value, json};

/// The Avro schema rows of `schema` are written with, as ksqlDB writes it: a record `name` in
/// `namespace` (ksqlDB's defaults are `KsqlDataSourceSchema` and
/// `io.confluent.ksql.avro_schemas`) whose every field is `["null", T]` with `"default":
/// null`; nested structs are records named `<parent>_<FIELD>`; `TIMESTAMP` is a `long` with
/// logical type `timestamp-millis`, `DATE` an `int` with `date`, `TIME` an `int` with
/// `time-millis`, `DECIMAL(p, s)` `bytes` with `decimal`; a map is an Avro map (string keys)
/// and an array an array, both of `["null", T]`. Field names are taken as they are (Avro
/// allows `[A-Za-z_][A-Za-z0-9_]*`).
///
/// # Errors
/// A column of a type no format writes.
pub fn avro_schema_for(schema: &Schema, name: &str, namespace: &str) -> Result<Value, FormatError> {
    let fields = record_fields(schema.fields().iter().map(AsRef::as_ref), name, None)?;
    Ok(json!({
        "type": "record",
        "name": name,
        "namespace": namespace,
        "fields": fields,
    }))
}

fn record_fields<'a>(
    fields: impl Iterator<Item = &'a Field>,
    record: &str,
    parent: Option<&str>,
) -> Result<Vec<Value>, FormatError> {
    let mut out = Vec::new();
    for f in fields {
        let path = match parent {
            Some(p) => format!("{p}->{}", f.name()),
            None => f.name().clone(),
        };
        let inner = type_of(f, &format!("{record}_{}", f.name()), &path)?;
        let t = if inner == json!("null") {
            inner
        } else {
            json!(["null", inner])
        };
        out.push(json!({"name": f.name(), "type": t, "default": null}));
    }
    Ok(out)
}

fn nullable(v: Value) -> Value {
    if v == json!("null") {
        v
    } else {
        json!(["null", v])
    }
}

fn type_of(f: &Field, record: &str, path: &str) -> Result<Value, FormatError> {
    let unsupported = || FormatError::UnsupportedType {
        column: path.to_owned(),
        data_type: f.data_type().to_string(),
        format: "AVRO",
    };
    let sql = sql_of(f.data_type()).ok_or_else(unsupported)?;
    Ok(match sql {
        Sql::Null => json!("null"),
        Sql::Boolean => json!("boolean"),
        Sql::Int => json!("int"),
        Sql::BigInt => json!("long"),
        Sql::Double => json!("double"),
        Sql::Decimal(p, s) => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s})
        }
        Sql::String => json!("string"),
        Sql::Bytes => json!("bytes"),
        Sql::Timestamp => json!({"type": "long", "logicalType": "timestamp-millis"}),
        Sql::Date => json!({"type": "int", "logicalType": "date"}),
        Sql::Time => json!({"type": "int", "logicalType": "time-millis"}),
        Sql::Array => {
            let DataType::List(item) = f.data_type() else {
                return Err(unsupported());
            };
            json!({"type": "array", "items": nullable(type_of(item, record, path)?)})
        }
        Sql::Map => {
            let DataType::Map(entries, _) = f.data_type() else {
                return Err(unsupported());
            };
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(unsupported());
            };
            if kv.len() != 2
                || !matches!(
                    kv[0].data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                )
            {
                return Err(unsupported());
            }
            json!({"type": "map", "values": nullable(type_of(&kv[1], record, path)?)})
        }
        Sql::Struct => {
            let DataType::Struct(children) = f.data_type() else {
                return Err(unsupported());
            };
            let fields = record_fields(children.iter().map(AsRef::as_ref), record, Some(path))?;
            json!({"type": "record", "name": record, "fields": fields})
        }
    })
}

/// Encodes rows as Avro binary datums of the schema [`avro_schema_for`] gives (no wire
/// header: the caller adds the registry's).
pub struct AvroEncoder {
    types: Vec<DataType>,
}

impl AvroEncoder {
    /// An encoder for batches of `schema`.
    ///
    /// # Errors
    /// A column of a type no format writes.
    pub fn new(schema: &Schema) -> Result<Self, FormatError> {
        avro_schema_for(
            schema,
            "KsqlDataSourceSchema",
            "io.confluent.ksql.avro_schemas",
        )?;
        Ok(AvroEncoder {
            types: schema
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
        })
    }
}

impl RowEncoder for AvroEncoder {
    fn encode(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<(), FormatError> {
        let schema = batch.schema();
        if schema.fields().len() != self.types.len()
            || schema
                .fields()
                .iter()
                .zip(&self.types)
                .any(|(f, t)| f.data_type() != t)
        {
            return Err(FormatError::Schema(
                "the batch's column types differ from the encoder's schema".into(),
            ));
        }
        let mut views = Vec::with_capacity(batch.num_columns());
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            views.push((f.name().as_str(), View::new(c.as_ref(), f.name(), "AVRO")?));
        }
        for i in 0..batch.num_rows() {
            for (name, v) in &views {
                write_nullable(out, v, i).map_err(|message| FormatError::Value {
                    column: (*name).to_owned(),
                    row: i,
                    message,
                })?;
            }
            ends.push(out.len());
        }
        Ok(())
    }
}

#[inline]
fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// A `["null", T]` value: the branch, then the value.
#[inline]
fn write_nullable(out: &mut Vec<u8>, v: &View<'_>, i: usize) -> Result<(), String> {
    if matches!(v, View::Null) {
        return Ok(());
    }
    if v.is_null(i) {
        out.push(0);
        return Ok(());
    }
    out.push(2);
    write_value(out, v, i)
}

fn write_value(out: &mut Vec<u8>, v: &View<'_>, i: usize) -> Result<(), String> {
    match v {
        View::Null => {}
        View::Bool(a) => out.push(u8::from(a.value(i))),
        View::F32(_) | View::F64(_) => {
            out.extend_from_slice(&v.double(i).unwrap_or(f64::NAN).to_le_bytes());
        }
        View::Decimal(a, _) => {
            let b = a.value(i).to_be_bytes();
            // The shortest two's complement: drop leading bytes that only repeat the sign.
            let mut k = 0;
            while k < 15
                && ((b[k] == 0 && b[k + 1] & 0x80 == 0) || (b[k] == 0xff && b[k + 1] & 0x80 != 0))
            {
                k += 1;
            }
            write_bytes(out, &b[k..]);
        }
        View::Utf8(_)
        | View::LargeUtf8(_)
        | View::Utf8Views(_)
        | View::Binary(_)
        | View::LargeBinary(_) => write_bytes(out, v.bytes(i).unwrap_or_default()),
        View::List { offsets, item, .. } => {
            let r = range(offsets, i);
            if !r.is_empty() {
                write_long(out, r.len() as i64);
                for j in r {
                    write_nullable(out, item, j)?;
                }
            }
            out.push(0);
        }
        View::Map {
            offsets,
            keys,
            values,
            ..
        } => {
            let r = range(offsets, i);
            if !r.is_empty() {
                write_long(out, r.len() as i64);
                for j in r {
                    write_bytes(out, keys.bytes(j).unwrap_or_default());
                    write_nullable(out, values, j)?;
                }
            }
            out.push(0);
        }
        View::Struct { fields, .. } => {
            for (_, f) in fields {
                write_nullable(out, f, i)?;
            }
        }
        _ => match v.int(i) {
            Some(x) => write_long(out, x),
            None => return Err("value out of the range of BIGINT".into()),
        },
    }
    Ok(())
}
