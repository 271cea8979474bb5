//! Avro datums ↔ JSON documents, for the CLI (`produce/consume --value-format avro`) and
//! the benchmark. Plain JSON is accepted for unions (the first branch that fits) as well
//! as Avro's JSON encoding (`{"string": "x"}`); missing record fields take their defaults.

use crate::avro::ParsedAvro;
use crate::error::{RegistryError, RegistryResult};
use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::UuidSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::Value as Json;
use std::collections::HashMap;

/// An encoder and decoder built once for a schema.
pub struct AvroCodec<'s> {
    parsed: &'s ParsedAvro,
    writer: GenericDatumWriter<'s>,
    reader: GenericDatumReader<'s>,
}

fn avro_err(what: &str) -> impl Fn(apache_avro::Error) -> RegistryError + '_ {
    move |e| RegistryError::Wire(format!("{what}: {e}"))
}

impl<'s> AvroCodec<'s> {
    /// Builds the codec (resolves names once).
    pub fn new(parsed: &'s ParsedAvro) -> RegistryResult<Self> {
        let deps: Vec<&Schema> = parsed.deps.iter().collect();
        let writer = if deps.is_empty() {
            GenericDatumWriter::builder(&parsed.schema).build()
        } else {
            GenericDatumWriter::builder(&parsed.schema)
                .schemata(deps.clone())
                .and_then(|b| b.build())
        }
        .map_err(avro_err("building the Avro writer"))?;
        let reader = if deps.is_empty() {
            GenericDatumReader::builder(&parsed.schema).build()
        } else {
            GenericDatumReader::builder(&parsed.schema)
                .writer_schemata(deps)
                .and_then(|b| b.build())
        }
        .map_err(avro_err("building the Avro reader"))?;
        Ok(AvroCodec {
            parsed,
            writer,
            reader,
        })
    }

    /// Appends the binary datum of `value` to `out`.
    pub fn encode(&self, value: &Value, out: &mut Vec<u8>) -> RegistryResult<()> {
        self.writer
            .write_value_ref(out, value)
            .map(|_| ())
            .map_err(avro_err("value does not match the schema"))
    }

    /// The binary datum of a JSON document.
    pub fn encode_json(&self, json: &Json) -> RegistryResult<Vec<u8>> {
        let v = json_to_avro(json, &self.parsed.schema, &self.parsed.names, "$")?;
        let mut out = Vec::new();
        self.encode(&v, &mut out)?;
        Ok(out)
    }

    /// Decodes one datum (all of `bytes`).
    pub fn decode(&self, mut bytes: &[u8]) -> RegistryResult<Value> {
        let v = self
            .reader
            .read_value(&mut bytes)
            .map_err(avro_err("not a datum of the schema"))?;
        if !bytes.is_empty() {
            return Err(RegistryError::Wire(format!(
                "{} bytes left after the Avro datum",
                bytes.len()
            )));
        }
        Ok(v)
    }
}

fn resolve<'a>(s: &'a Schema, names: &'a HashMap<String, Schema>) -> &'a Schema {
    match s {
        Schema::Ref { name } => names.get(&name.fullname(None)).unwrap_or(s),
        _ => s,
    }
}

fn type_name(s: &Schema) -> String {
    match s {
        Schema::Record(r) => r.name.fullname(None),
        Schema::Enum(e) => e.name.fullname(None),
        Schema::Fixed(f) => f.name.fullname(None),
        Schema::Ref { name } => name.fullname(None),
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int".into(),
        Schema::Long => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes => "bytes".into(),
        Schema::String => "string".into(),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        other => format!("{other:?}"),
    }
}

/// Converts a JSON document to an Avro value of `schema`; errors name the JSON path.
pub fn json_to_avro(
    json: &Json,
    schema: &Schema,
    names: &HashMap<String, Schema>,
    path: &str,
) -> RegistryResult<Value> {
    let schema = resolve(schema, names);
    let bad = |what: &str| RegistryError::Wire(format!("{path}: expected {what}, got {json}"));
    let int = || {
        json.as_i64()
            .filter(|i| i32::try_from(*i).is_ok())
            .map(|i| i as i32)
            .ok_or_else(|| bad("an int"))
    };
    let long = || json.as_i64().ok_or_else(|| bad("a long"));
    Ok(match schema {
        Schema::Null => match json {
            Json::Null => Value::Null,
            _ => return Err(bad("null")),
        },
        Schema::Boolean => Value::Boolean(json.as_bool().ok_or_else(|| bad("a boolean"))?),
        Schema::Int => Value::Int(int()?),
        Schema::Date => Value::Date(int()?),
        Schema::TimeMillis => Value::TimeMillis(int()?),
        Schema::Long => Value::Long(long()?),
        Schema::TimeMicros => Value::TimeMicros(long()?),
        Schema::TimestampMillis => Value::TimestampMillis(long()?),
        Schema::TimestampMicros => Value::TimestampMicros(long()?),
        Schema::TimestampNanos => Value::TimestampNanos(long()?),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(long()?),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(long()?),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(long()?),
        Schema::Float => Value::Float(json.as_f64().ok_or_else(|| bad("a float"))? as f32),
        Schema::Double => Value::Double(json.as_f64().ok_or_else(|| bad("a double"))?),
        Schema::Bytes => Value::Bytes(
            json.as_str()
                .ok_or_else(|| bad("a string of bytes"))?
                .as_bytes()
                .to_vec(),
        ),
        Schema::String | Schema::Uuid(UuidSchema::String) => {
            Value::String(json.as_str().ok_or_else(|| bad("a string"))?.to_string())
        }
        Schema::Fixed(f) => {
            let b = json
                .as_str()
                .ok_or_else(|| bad("a string"))?
                .as_bytes()
                .to_vec();
            if b.len() != f.size {
                return Err(bad(&format!("{} bytes", f.size)));
            }
            Value::Fixed(f.size, b)
        }
        Schema::Enum(e) => {
            let sym = json.as_str().ok_or_else(|| bad("an enum symbol"))?;
            let i = e
                .symbols
                .iter()
                .position(|s| s == sym)
                .ok_or_else(|| bad(&format!("one of {:?}", e.symbols)))?;
            Value::Enum(i as u32, sym.to_string())
        }
        Schema::Array(a) => {
            let items = json.as_array().ok_or_else(|| bad("an array"))?;
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| json_to_avro(x, &a.items, names, &format!("{path}[{i}]")))
                    .collect::<RegistryResult<_>>()?,
            )
        }
        Schema::Map(m) => {
            let obj = json.as_object().ok_or_else(|| bad("an object"))?;
            Value::Map(
                obj.iter()
                    .map(|(k, x)| {
                        Ok((
                            k.clone(),
                            json_to_avro(x, &m.types, names, &format!("{path}.{k}"))?,
                        ))
                    })
                    .collect::<RegistryResult<_>>()?,
            )
        }
        Schema::Union(u) => {
            let variants = u.variants();
            // Avro JSON encoding: {"type name": value}
            if let Json::Object(o) = json
                && o.len() == 1
                && let Some((k, inner)) = o.iter().next()
                && let Some(i) = variants.iter().position(|v| {
                    let n = type_name(resolve(v, names));
                    &n == k || n.rsplit('.').next() == Some(k.as_str())
                })
            {
                return Ok(Value::Union(
                    i as u32,
                    Box::new(json_to_avro(inner, &variants[i], names, path)?),
                ));
            }
            for (i, v) in variants.iter().enumerate() {
                if let Ok(x) = json_to_avro(json, v, names, path) {
                    return Ok(Value::Union(i as u32, Box::new(x)));
                }
            }
            return Err(bad("a value of one of the union's branches"));
        }
        Schema::Record(r) => {
            let obj = json
                .as_object()
                .ok_or_else(|| bad(&format!("an object for record {}", r.name.fullname(None))))?;
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let p = format!("{path}.{}", f.name);
                let v = match (obj.get(&f.name), &f.default) {
                    (Some(x), _) => json_to_avro(x, &f.schema, names, &p)?,
                    (None, Some(d)) => json_to_avro(d, &f.schema, names, &p)?,
                    (None, None) => {
                        return Err(RegistryError::Wire(format!(
                            "{p}: field is missing and has no default"
                        )));
                    }
                };
                fields.push((f.name.clone(), v));
            }
            Value::Record(fields)
        }
        other => {
            return Err(RegistryError::Wire(format!(
                "{path}: converting JSON to the Avro type {} is not supported",
                type_name(other)
            )));
        }
    })
}

/// Converts an Avro value to plain JSON (unions unwrapped, bytes as text).
pub fn avro_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => Json::from(*i),
        Value::Long(l)
        | Value::TimeMicros(l)
        | Value::TimestampMillis(l)
        | Value::TimestampMicros(l)
        | Value::TimestampNanos(l)
        | Value::LocalTimestampMillis(l)
        | Value::LocalTimestampMicros(l)
        | Value::LocalTimestampNanos(l) => Json::from(*l),
        Value::Float(f) => Json::from(f64::from(*f)),
        Value::Double(d) => Json::from(*d),
        Value::Bytes(b) | Value::Fixed(_, b) => {
            Json::String(String::from_utf8_lossy(b).into_owned())
        }
        Value::String(s) => Json::String(s.clone()),
        Value::Enum(_, s) => Json::String(s.clone()),
        Value::Union(_, inner) => avro_to_json(inner),
        Value::Array(a) => Json::Array(a.iter().map(avro_to_json).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        Value::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        Value::Uuid(u) => Json::String(u.to_string()),
        other => Json::String(format!("{other:?}")),
    }
}

/// Validates JSON documents against a JSON Schema (for `JSON_SR` values).
pub struct JsonSchemaCodec {
    validator: jsonschema::Validator,
}

impl JsonSchemaCodec {
    /// Compiles the schema.
    pub fn new(schema: &Json) -> RegistryResult<Self> {
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| RegistryError::InvalidSchema(format!("JSON Schema: {e}")))?;
        Ok(JsonSchemaCodec { validator })
    }

    /// Checks a document; the error names the first violation and where it is.
    pub fn validate(&self, doc: &Json) -> RegistryResult<()> {
        self.validator.validate(doc).map_err(|e| {
            RegistryError::Wire(format!(
                "document does not match the JSON Schema at '{}': {e}",
                e.instance_path()
            ))
        })
    }
}
