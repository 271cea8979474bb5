//! Avro datums ↔ JSON documents, for the CLI (`produce/consume --value-format avro`) and
//! the benchmark. Plain JSON is accepted for unions (the first branch that fits) as well
//! as Avro's JSON encoding (`{"string": "x"}`); missing record fields take their defaults.
//!
//! Every conversion here nests at most [`MAX_DEPTH`] levels (see [`crate::datum`]): decoding
//! uses the crate's own bounded reader, JSON → Avro and Avro → JSON count levels as they
//! recurse, values handed to `apache-avro`'s writer are checked first, and JSON Schema
//! documents are checked before validation. A value past the limit is an error naming the
//! limit and where, never a stack overflow.
//!
//! [`AvroCodec`] borrows its schema (the `apache-avro` writers do); [`AvroDecoder`] owns an
//! `Arc` of it, for caches keyed by schema id.

use crate::avro::{ParsedAvro, resolve};
use crate::datum::{self, MAX_DEPTH};
use crate::error::{RegistryError, RegistryResult};
use apache_avro::Schema;
use apache_avro::schema::UuidSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// An owning, cheaply clonable decoder of one schema's datums: what a cache keyed by
/// schema id holds (the schema's named types are resolved once, at parse time).
#[derive(Debug, Clone)]
pub struct AvroDecoder {
    parsed: Arc<ParsedAvro>,
}

impl AvroDecoder {
    /// A decoder of `parsed`'s datums.
    pub fn new(parsed: Arc<ParsedAvro>) -> Self {
        AvroDecoder { parsed }
    }

    /// The schema.
    pub fn parsed(&self) -> &Arc<ParsedAvro> {
        &self.parsed
    }

    /// Decodes one datum (all of `bytes`), at most [`MAX_DEPTH`] levels deep.
    pub fn decode(&self, bytes: &[u8]) -> RegistryResult<Value> {
        datum::decode(&self.parsed, bytes)
    }

    /// Decodes one datum to plain JSON (see [`avro_to_json`]).
    pub fn decode_json(&self, bytes: &[u8]) -> RegistryResult<Json> {
        datum::decode_json(&self.parsed, bytes)
    }
}

/// An encoder and decoder built once for a schema.
pub struct AvroCodec<'s> {
    parsed: &'s ParsedAvro,
    writer: GenericDatumWriter<'s>,
    /// The same writer without the per-value schema check, for values built from the
    /// schema itself (`json_to_avro`), which are valid by construction.
    trusted: GenericDatumWriter<'s>,
}

fn avro_err(what: &str) -> impl Fn(apache_avro::Error) -> RegistryError + '_ {
    move |e| RegistryError::Wire(format!("{what}: {e}"))
}

impl<'s> AvroCodec<'s> {
    /// Builds the codec (resolves names once).
    pub fn new(parsed: &'s ParsedAvro) -> RegistryResult<Self> {
        let deps: Vec<&Schema> = parsed.deps.iter().collect();
        let build = |validate: bool| {
            if deps.is_empty() {
                GenericDatumWriter::builder(&parsed.schema)
                    .validate(validate)
                    .build()
            } else {
                GenericDatumWriter::builder(&parsed.schema)
                    .schemata(deps.clone())
                    .and_then(|b| b.validate(validate).build())
            }
            .map_err(avro_err("building the Avro writer"))
        };
        let writer = build(true)?;
        let trusted = build(false)?;
        Ok(AvroCodec {
            parsed,
            writer,
            trusted,
        })
    }

    /// Appends the binary datum of `value` to `out`.
    pub fn encode(&self, value: &Value, out: &mut Vec<u8>) -> RegistryResult<()> {
        // apache-avro's writer recurses without a limit, with large frames
        datum::check_value_within(value, datum::VALIDATING_WRITER_MAX_DEPTH)?;
        self.writer
            .write_value_ref(out, value)
            .map(|_| ())
            .map_err(avro_err("value does not match the schema"))
    }

    /// The binary datum of a JSON document.
    pub fn encode_json(&self, json: &Json) -> RegistryResult<Vec<u8>> {
        let v = json_to_avro(json, &self.parsed.schema, &self.parsed.names, "$")?;
        let mut out = Vec::new();
        // json_to_avro builds the value from the schema: no second check needed.
        self.encode_trusted(&v, &mut out)?;
        Ok(out)
    }

    /// Appends the datum of a value already known to match the schema (built from it),
    /// skipping the per-value check — the hot path for producers that build values from
    /// the schema. A value that does not match writes unreadable bytes: use
    /// [`AvroCodec::encode`] for values from elsewhere.
    pub fn encode_trusted(&self, value: &Value, out: &mut Vec<u8>) -> RegistryResult<()> {
        let start = out.len();
        match write_datum(value, &self.parsed.schema, &self.parsed.names, out, 0) {
            Ok(()) => Ok(()),
            Err(Fast::TooDeep) => {
                out.truncate(start);
                Err(RegistryError::Wire(format!(
                    "the Avro value nests deeper than {MAX_DEPTH} levels (the limit)"
                )))
            }
            // a type the fast writer does not cover (decimals, durations…): the crate's
            Err(Fast::Unsupported) => {
                out.truncate(start);
                self.trusted
                    .write_value_ref(out, value)
                    .map(|_| ())
                    .map_err(avro_err("encoding"))
            }
        }
    }

    /// Decodes one datum (all of `bytes`), at most [`MAX_DEPTH`] levels deep.
    pub fn decode(&self, bytes: &[u8]) -> RegistryResult<Value> {
        datum::decode(self.parsed, bytes)
    }
}

/// Why the fast writer stopped.
enum Fast {
    /// A value or type it does not cover: the crate's writer takes over.
    Unsupported,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}
use Fast::Unsupported;

/// Appends `v` in Avro's zig-zag variable-length encoding (ints and longs, lengths, counts).
pub fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends Avro `bytes` / `string`: the length, then the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Avro binary encoding of `v` as `schema` (the spec's rules; record fields are matched in
/// schema order, by name when the order differs). Writes nothing useful on `Unsupported`.
fn write_datum(
    v: &Value,
    schema: &Schema,
    names: &HashMap<String, Schema>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Fast> {
    let schema = resolve(schema, names);
    let depth = depth
        + usize::from(matches!(
            v,
            Value::Record(_) | Value::Array(_) | Value::Map(_)
        ));
    if depth > MAX_DEPTH {
        return Err(Fast::TooDeep);
    }
    match (v, schema) {
        (Value::Null, Schema::Null) => {}
        (Value::Boolean(b), Schema::Boolean) => out.push(u8::from(*b)),
        (Value::Int(i), Schema::Int | Schema::Date | Schema::TimeMillis)
        | (Value::Date(i), Schema::Date | Schema::Int)
        | (Value::TimeMillis(i), Schema::TimeMillis | Schema::Int) => put_long(out, i64::from(*i)),
        (
            Value::Long(l)
            | Value::TimeMicros(l)
            | Value::TimestampMillis(l)
            | Value::TimestampMicros(l)
            | Value::TimestampNanos(l)
            | Value::LocalTimestampMillis(l)
            | Value::LocalTimestampMicros(l)
            | Value::LocalTimestampNanos(l),
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos,
        ) => put_long(out, *l),
        (Value::Float(f), Schema::Float) => out.extend_from_slice(&f.to_le_bytes()),
        (Value::Double(d), Schema::Double) => out.extend_from_slice(&d.to_le_bytes()),
        (Value::Bytes(b), Schema::Bytes) => put_bytes(out, b),
        (Value::String(st), Schema::String | Schema::Uuid(UuidSchema::String)) => {
            put_bytes(out, st.as_bytes())
        }
        (Value::Fixed(n, b), Schema::Fixed(f)) if *n == f.size && b.len() == f.size => {
            out.extend_from_slice(b)
        }
        (Value::Enum(i, sym), Schema::Enum(e)) if e.symbols.get(*i as usize) == Some(sym) => {
            put_long(out, i64::from(*i))
        }
        (Value::Union(i, inner), Schema::Union(u)) => {
            let branch = u.variants().get(*i as usize).ok_or(Unsupported)?;
            put_long(out, i64::from(*i));
            write_datum(inner, branch, names, out, depth)?;
        }
        (Value::Array(items), Schema::Array(a)) => {
            if !items.is_empty() {
                put_long(out, items.len() as i64);
                for x in items {
                    write_datum(x, &a.items, names, out, depth)?;
                }
            }
            out.push(0);
        }
        (Value::Map(m), Schema::Map(ms)) => {
            if !m.is_empty() {
                put_long(out, m.len() as i64);
                for (k, x) in m {
                    put_bytes(out, k.as_bytes());
                    write_datum(x, &ms.types, names, out, depth)?;
                }
            }
            out.push(0);
        }
        (Value::Record(fields), Schema::Record(r)) => {
            if fields.len() != r.fields.len() {
                return Err(Unsupported);
            }
            for (i, f) in r.fields.iter().enumerate() {
                let value = match &fields[i] {
                    (name, x) if *name == f.name => x,
                    _ => {
                        &fields
                            .iter()
                            .find(|(n, _)| *n == f.name)
                            .ok_or(Unsupported)?
                            .1
                    }
                };
                write_datum(value, &f.schema, names, out, depth)?;
            }
        }
        _ => return Err(Unsupported),
    }
    Ok(())
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

/// Converts a JSON document to an Avro value of `schema`; errors name the JSON path. The
/// value may nest at most [`MAX_DEPTH`] records, arrays and maps.
pub fn json_to_avro(
    json: &Json,
    schema: &Schema,
    names: &HashMap<String, Schema>,
    path: &str,
) -> RegistryResult<Value> {
    to_avro(json, schema, names, path, 0)
}

fn to_avro(
    json: &Json,
    schema: &Schema,
    names: &HashMap<String, Schema>,
    path: &str,
    depth: usize,
) -> RegistryResult<Value> {
    let schema = resolve(schema, names);
    let depth = depth
        + usize::from(matches!(
            schema,
            Schema::Record(_) | Schema::Array(_) | Schema::Map(_)
        ));
    if depth > MAX_DEPTH {
        return Err(RegistryError::Wire(format!(
            "{path}: the value nests deeper than {MAX_DEPTH} levels (records, arrays and maps), the limit"
        )));
    }
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
                    .map(|(i, x)| to_avro(x, &a.items, names, &format!("{path}[{i}]"), depth))
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
                            to_avro(x, &m.types, names, &format!("{path}.{k}"), depth)?,
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
                    Box::new(to_avro(inner, &variants[i], names, path, depth)?),
                ));
            }
            for (i, v) in variants.iter().enumerate() {
                if let Ok(x) = to_avro(json, v, names, path, depth) {
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
                    (Some(x), _) => to_avro(x, &f.schema, names, &p, depth)?,
                    (None, Some(d)) => to_avro(d, &f.schema, names, &p, depth)?,
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

/// Converts an Avro value to plain JSON (unions unwrapped, bytes as text); a value nesting
/// deeper than [`MAX_DEPTH`] records, arrays and maps is an error naming where.
pub fn avro_to_json(v: &Value) -> RegistryResult<Json> {
    to_json(v, 0).map_err(|path| {
        let mut p = String::from("$");
        for seg in path.iter().rev() {
            p.push_str(seg);
        }
        RegistryError::Wire(format!(
            "the Avro value nests deeper than {MAX_DEPTH} levels (the limit) at {p}"
        ))
    })
}

/// On failure: the path, innermost segment first.
fn to_json(v: &Value, depth: usize) -> Result<Json, Vec<String>> {
    let depth = depth
        + usize::from(matches!(
            v,
            Value::Record(_) | Value::Array(_) | Value::Map(_)
        ));
    if depth > MAX_DEPTH {
        return Err(Vec::new());
    }
    // the segment is formatted only on failure (this is the hot path of every decode)
    fn push(mut p: Vec<String>, seg: String) -> Vec<String> {
        p.push(seg);
        p
    }
    Ok(match v {
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
        Value::Union(_, inner) => to_json(inner, depth)?,
        Value::Array(a) => Json::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| to_json(x, depth).map_err(|p| push(p, format!("[{i}]"))))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, x)| {
                    Ok((
                        k.clone(),
                        to_json(x, depth).map_err(|p| push(p, format!(".{k}")))?,
                    ))
                })
                .collect::<Result<_, Vec<String>>>()?,
        ),
        Value::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, x)| {
                    Ok((
                        k.clone(),
                        to_json(x, depth).map_err(|p| push(p, format!(".{k}")))?,
                    ))
                })
                .collect::<Result<_, Vec<String>>>()?,
        ),
        Value::Uuid(u) => Json::String(u.to_string()),
        other => Json::String(format!("{other:?}")),
    })
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

    /// Checks a document (at most [`MAX_DEPTH`] levels deep); the error names the first
    /// violation and where it is.
    pub fn validate(&self, doc: &Json) -> RegistryResult<()> {
        datum::check_json(doc)?;
        self.validator.validate(doc).map_err(|e| {
            RegistryError::Wire(format!(
                "document does not match the JSON Schema at '{}': {e}",
                e.instance_path()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro;

    const SCHEMA: &str = r#"{"type":"record","name":"R","namespace":"t","fields":[
        {"name":"l","type":"long"},{"name":"i","type":"int"},{"name":"f","type":"float"},{"name":"d","type":"double"},
        {"name":"s","type":"string"},{"name":"b","type":"bytes"},{"name":"ok","type":"boolean"},
        {"name":"u","type":["null","string",{"type":"record","name":"In","fields":[{"name":"x","type":"int"}]}]},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
        {"name":"xs","type":{"type":"array","items":"long"}},
        {"name":"m","type":{"type":"map","values":"double"}},
        {"name":"fx","type":{"type":"fixed","name":"F","size":3}},
        {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"next","type":["null","R"],"default":null}
    ]}"#;

    fn docs() -> Vec<Json> {
        let mut out = Vec::new();
        for k in 0..40i64 {
            let sym = ["A", "B", "C"][k as usize % 3];
            out.push(serde_json::json!({
                "l": k * 1_000_003 - 7_000_000_000i64, "i": (k as i32) * -17, "f": k as f64 / 3.0, "d": -k as f64 * 1e10,
                "s": "ü".repeat(k as usize % 5), "b": "xy".repeat(k as usize % 3), "ok": k % 2 == 0,
                "u": match k % 3 { 0 => Json::Null, 1 => Json::from(format!("s{k}")), _ => serde_json::json!({"In": {"x": k}}) },
                "e": sym,
                "xs": (0..k % 4).map(|j| j * 300 - 600).collect::<Vec<_>>(),
                "m": if k % 2 == 0 { serde_json::json!({}) } else { serde_json::json!({"a": 1.5}) },
                "fx": "abc", "ts": 1_700_000_000_000i64 + k,
                "next": if k % 5 == 0 { serde_json::json!({"R": {"l": 1, "i": 2, "f": 0.5, "d": 1.0, "s": "", "b": "", "ok": true, "u": null, "e": "A", "xs": [], "m": {}, "fx": "xyz", "ts": 0, "next": null}}) } else { Json::Null },
            }));
        }
        out
    }

    #[test]
    fn fast_writer_matches_the_crate_byte_for_byte_and_round_trips() {
        let parsed = avro::parse(SCHEMA, &[]).unwrap();
        let codec = AvroCodec::new(&parsed).unwrap();
        for doc in docs() {
            let v = json_to_avro(&doc, &parsed.schema, &parsed.names, "$").unwrap();
            let mut fast = Vec::new();
            if write_datum(&v, &parsed.schema, &parsed.names, &mut fast, 0).is_err() {
                panic!("unsupported: {doc}");
            }
            let mut reference = Vec::new();
            codec.encode(&v, &mut reference).unwrap();
            assert_eq!(fast, reference, "{doc}");
            let back = avro_to_json(&codec.decode(&fast).unwrap()).unwrap();
            assert_eq!(back["s"], doc["s"]);
            assert_eq!(back["xs"], doc["xs"]);
        }
    }

    #[test]
    fn a_value_not_matching_the_schema_is_refused_by_the_checked_encoder() {
        let parsed = avro::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
            &[],
        )
        .unwrap();
        let codec = AvroCodec::new(&parsed).unwrap();
        let bad = Value::Record(vec![("a".into(), Value::String("no".into()))]);
        assert!(codec.encode(&bad, &mut Vec::new()).is_err());
        let e = codec
            .encode_json(&serde_json::json!({"a": "no"}))
            .unwrap_err();
        assert!(e.to_string().contains("$.a"), "{e}");
        assert!(
            codec
                .decode(&[0x02, 0x05])
                .unwrap_err()
                .to_string()
                .contains("left after")
        );
    }
}
