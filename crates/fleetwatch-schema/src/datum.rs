//! A bounded reader of Avro binary datums (sans-IO: a byte slice in, an
//! `apache_avro::types::Value` out), and the nesting limit every codec of this crate applies.
//!
//! `apache-avro`'s own decoder recurses once per nested value with no limit, so a datum of
//! a recursive schema (`{"name":"next","type":["null","Node"]}`) 10 000 levels deep
//! overflows the stack and aborts the process. This reader counts nesting and refuses a
//! datum deeper than [`MAX_DEPTH`] with an error naming the limit, the path and the byte.
//!
//! **Depth** is the number of nested records, arrays and maps, the outermost value
//! included (a record at the top is depth 1, a record in one of its fields depth 2); unions
//! do not add a level (a union cannot hold a union directly, so the stack stays bounded by
//! twice the limit). It is the same count as the nesting of JSON objects and arrays in the
//! JSON form of the value, so one limit holds across Avro decode, Avro ↔ JSON conversion
//! and JSON Schema documents ([`check_json`], [`check_json_text`]).
//!
//! Other checks, so that no input can make it allocate more than the datum justifies: a
//! length (bytes, string, array or map block) may not exceed the bytes left, except that a
//! datum may hold up to [`ZERO_WIDTH_ITEMS`] more collection items than it has bytes (items
//! such as `null` take no byte).
//!
//! Rare leaf logical types (decimal, big-decimal, uuid, duration) are handed to
//! `apache-avro` one leaf at a time (a leaf does not nest).

use crate::avro::{ParsedAvro, resolve};
use crate::error::{RegistryError, RegistryResult};
use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::InnerDecimalSchema;
use apache_avro::types::Value;
use serde_json::Value as Json;
use std::collections::HashMap;

/// The deepest nesting of records, arrays and maps (Avro) or objects and arrays (JSON) any
/// codec of this crate reads or writes. 100 stays below `serde_json`'s own parse limit (127),
/// so every value that decodes converts to JSON that parses back.
pub const MAX_DEPTH: usize = 100;

/// How many collection items a datum may hold beyond one per byte (see the module doc).
pub const ZERO_WIDTH_ITEMS: usize = 1 << 16;

/// Why a datum did not decode, and where (`path` is built while unwinding, innermost first).
#[derive(Debug)]
struct Fail {
    reason: String,
    offset: usize,
    path: Vec<String>,
}

type Res<T> = Result<T, Box<Fail>>;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    items_left: usize,
    names: &'a HashMap<String, Schema>,
}

fn fail<T>(reason: impl Into<String>, offset: usize) -> Res<T> {
    Err(Box::new(Fail {
        reason: reason.into(),
        offset,
        path: Vec::new(),
    }))
}

/// Adds a path segment to an error on its way up.
fn at<T>(r: Res<T>, seg: impl FnOnce() -> String) -> Res<T> {
    r.map_err(|mut f| {
        f.path.push(seg());
        f
    })
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Res<&'a [u8]> {
        if n > self.remaining() {
            return fail(
                format!(
                    "{what} of {n} bytes is longer than the {} bytes left",
                    self.remaining()
                ),
                self.pos,
            );
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn long(&mut self) -> Res<i64> {
        let start = self.pos;
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return fail("the datum ends inside a number", start);
            };
            self.pos += 1;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        fail("a variable-length number runs over 10 bytes", start)
    }

    fn int(&mut self) -> Res<i32> {
        let start = self.pos;
        let l = self.long()?;
        i32::try_from(l).or_else(|_| fail(format!("{l} does not fit an int"), start))
    }

    fn len(&mut self, what: &str) -> Res<usize> {
        let start = self.pos;
        let l = self.long()?;
        let n =
            usize::try_from(l).or_else(|_| fail(format!("negative {what} length {l}"), start))?;
        if n > self.remaining() {
            return fail(
                format!(
                    "{what} of {n} bytes is longer than the {} bytes left",
                    self.remaining()
                ),
                start,
            );
        }
        Ok(n)
    }

    /// The item count of the next array or map block (0: the end).
    fn block(&mut self, what: &str) -> Res<usize> {
        let start = self.pos;
        let raw = self.long()?;
        let count = if raw < 0 {
            self.long()?; // the block's size in bytes, not needed
            raw.checked_neg().ok_or_else(|| {
                Box::new(Fail {
                    reason: format!("{what} block count {raw} overflows"),
                    offset: start,
                    path: Vec::new(),
                })
            })?
        } else {
            raw
        };
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > self.items_left {
            return fail(
                format!(
                    "{what} block of {count} items is more than the {} bytes left can hold",
                    self.remaining()
                ),
                start,
            );
        }
        self.items_left -= count;
        Ok(count)
    }

    /// The depth inside a value of `schema` at `depth`; an error past [`MAX_DEPTH`].
    fn enter(&self, schema: &Schema, depth: usize) -> Res<usize> {
        let nested = matches!(
            schema,
            Schema::Record(_) | Schema::Array(_) | Schema::Map(_)
        );
        let depth = depth + usize::from(nested);
        if depth > MAX_DEPTH {
            return fail(
                format!(
                    "the value nests deeper than {MAX_DEPTH} levels (records, arrays and maps), the decoding limit"
                ),
                self.pos,
            );
        }
        Ok(depth)
    }

    fn float(&mut self) -> Res<f32> {
        let b = self.take(4, "float")?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn double(&mut self) -> Res<f64> {
        let b = self.take(8, "double")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// A length-prefixed UTF-8 string (`what`: "string", "map key").
    fn str(&mut self, what: &str) -> Res<&'a str> {
        let start = self.pos;
        let n = self.len(what)?;
        let b = self.take(n, what)?;
        std::str::from_utf8(b).or_else(|e| fail(format!("{what} is not UTF-8: {e}"), start))
    }

    /// The branch a union's datum takes.
    fn branch(&mut self, u: &'a apache_avro::schema::UnionSchema) -> Res<(u32, &'a Schema)> {
        let start = self.pos;
        let i = self.long()?;
        let variants = u.variants();
        match usize::try_from(i).ok().and_then(|k| variants.get(k)) {
            Some(b) => Ok((i as u32, b)),
            None => fail(
                format!(
                    "union branch {i} is not one of the union's {} branches",
                    variants.len()
                ),
                start,
            ),
        }
    }

    fn value(&mut self, schema: &'a Schema, depth: usize) -> Res<Value> {
        let schema = resolve(schema, self.names);
        let start = self.pos;
        let depth = self.enter(schema, depth)?;
        Ok(match schema {
            Schema::Null => Value::Null,
            Schema::Boolean => match self.take(1, "boolean")?[0] {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                b => return fail(format!("boolean byte {b:#04x} is neither 0 nor 1"), start),
            },
            Schema::Int => Value::Int(self.int()?),
            Schema::Date => Value::Date(self.int()?),
            Schema::TimeMillis => Value::TimeMillis(self.int()?),
            Schema::Long => Value::Long(self.long()?),
            Schema::TimeMicros => Value::TimeMicros(self.long()?),
            Schema::TimestampMillis => Value::TimestampMillis(self.long()?),
            Schema::TimestampMicros => Value::TimestampMicros(self.long()?),
            Schema::TimestampNanos => Value::TimestampNanos(self.long()?),
            Schema::LocalTimestampMillis => Value::LocalTimestampMillis(self.long()?),
            Schema::LocalTimestampMicros => Value::LocalTimestampMicros(self.long()?),
            Schema::LocalTimestampNanos => Value::LocalTimestampNanos(self.long()?),
            Schema::Float => Value::Float(self.float()?),
            Schema::Double => Value::Double(self.double()?),
            Schema::Bytes => {
                let n = self.len("bytes")?;
                Value::Bytes(self.take(n, "bytes")?.to_vec())
            }
            Schema::String => Value::String(self.str("string")?.to_string()),
            Schema::Fixed(f) => Value::Fixed(f.size, self.take(f.size, "fixed")?.to_vec()),
            Schema::Enum(e) => {
                let i = self.int()?;
                match usize::try_from(i).ok().and_then(|u| e.symbols.get(u)) {
                    Some(sym) => Value::Enum(i as u32, sym.clone()),
                    None => {
                        return fail(
                            format!(
                                "enum index {i} is not one of the {} symbols of {}",
                                e.symbols.len(),
                                e.name.fullname(None)
                            ),
                            start,
                        );
                    }
                }
            }
            Schema::Union(u) => {
                let (i, branch) = self.branch(u)?;
                Value::Union(i, Box::new(self.value(branch, depth)?))
            }
            Schema::Array(a) => {
                let mut items = Vec::new();
                loop {
                    let n = self.block("array")?;
                    if n == 0 {
                        break;
                    }
                    items.reserve(n.min(self.remaining()));
                    for _ in 0..n {
                        let k = items.len();
                        items.push(at(self.value(&a.items, depth), || format!("[{k}]"))?);
                    }
                }
                Value::Array(items)
            }
            Schema::Map(m) => {
                let mut items = HashMap::new();
                loop {
                    let n = self.block("map")?;
                    if n == 0 {
                        break;
                    }
                    items.reserve(n.min(self.remaining()));
                    for _ in 0..n {
                        let key = self.str("map key")?.to_string();
                        let v = at(self.value(&m.types, depth), || format!(".{key}"))?;
                        items.insert(key, v);
                    }
                }
                Value::Map(items)
            }
            Schema::Record(r) => {
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let v = at(self.value(&f.schema, depth), || format!(".{}", f.name))?;
                    fields.push((f.name.clone(), v));
                }
                Value::Record(fields)
            }
            Schema::Ref { name } => {
                return fail(
                    format!("the type {} is not defined", name.fullname(None)),
                    start,
                );
            }
            leaf @ (Schema::Decimal(_)
            | Schema::BigDecimal
            | Schema::Uuid(_)
            | Schema::Duration(_)) => self.leaf(leaf)?,
        })
    }

    /// Like [`Reader::value`], but builds the JSON form directly (the form
    /// `codec::avro_to_json` gives), skipping the intermediate `apache_avro` value: the hot
    /// path of consumers that want JSON (the CLI, later SQL). Leaves it does not handle itself
    /// go through [`Reader::value`] and `avro_to_json`, so both forms always agree.
    fn json(&mut self, schema: &'a Schema, depth: usize) -> Res<Json> {
        let schema = resolve(schema, self.names);
        let start = self.pos;
        let inner = self.enter(schema, depth)?;
        Ok(match schema {
            Schema::Null => Json::Null,
            Schema::Int | Schema::Date | Schema::TimeMillis => Json::from(self.int()?),
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Json::from(self.long()?),
            Schema::Float => Json::from(f64::from(self.float()?)),
            Schema::Double => Json::from(self.double()?),
            Schema::String => Json::String(self.str("string")?.to_string()),
            Schema::Union(u) => {
                let (_, branch) = self.branch(u)?;
                self.json(branch, depth)?
            }
            Schema::Array(a) => {
                let mut items = Vec::new();
                loop {
                    let n = self.block("array")?;
                    if n == 0 {
                        break;
                    }
                    items.reserve(n.min(self.remaining()));
                    for _ in 0..n {
                        let k = items.len();
                        items.push(at(self.json(&a.items, inner), || format!("[{k}]"))?);
                    }
                }
                Json::Array(items)
            }
            Schema::Map(m) => {
                let mut items = serde_json::Map::new();
                loop {
                    let n = self.block("map")?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let key = self.str("map key")?.to_string();
                        let v = at(self.json(&m.types, inner), || format!(".{key}"))?;
                        items.insert(key, v);
                    }
                }
                Json::Object(items)
            }
            Schema::Record(r) => {
                let mut fields = serde_json::Map::new();
                for f in &r.fields {
                    let v = at(self.json(&f.schema, inner), || format!(".{}", f.name))?;
                    fields.insert(f.name.clone(), v);
                }
                Json::Object(fields)
            }
            // Everything else (booleans, bytes, fixed, enums, leaf logical types, undefined
            // names) the general reader decodes and checks; none of them nests.
            _ => {
                let v = self.value(schema, depth)?;
                crate::codec::avro_to_json(&v).or_else(|e| fail(e.to_string(), start))?
            }
        })
    }

    /// A leaf logical type, decoded by `apache-avro` (which does not nest for leaves).
    fn leaf(&mut self, schema: &Schema) -> Res<Value> {
        let start = self.pos;
        if let Schema::Decimal(d) = schema
            && matches!(d.inner, InnerDecimalSchema::Bytes)
        {
            // `apache-avro` reads a decimal of zero bytes but cannot write it back (Avro's
            // Java reference refuses it too): refuse it here, so that every value this
            // reader returns encodes again.
            let n = self.len("decimal")?;
            self.pos = start;
            if n == 0 {
                return fail(
                    "a decimal of zero bytes (its two's complement needs one at least)",
                    start,
                );
            }
        }
        let mut rest = &self.buf[self.pos..];
        let before = rest.len();
        let v = GenericDatumReader::builder(schema)
            .build()
            .and_then(|r| r.read_value(&mut rest));
        match v {
            Ok(v) => {
                self.pos += before - rest.len();
                Ok(v)
            }
            Err(e) => fail(e.to_string(), start),
        }
    }
}

/// Decodes one datum of `parsed` (all of `bytes`: bytes left over are an error), nesting at
/// most [`MAX_DEPTH`] levels. Errors are [`RegistryError::Wire`] naming the path (`$.a[3]`)
/// and byte offset.
pub fn decode(parsed: &ParsedAvro, bytes: &[u8]) -> RegistryResult<Value> {
    read_all(parsed, bytes, |r| r.value(&parsed.schema, 0))
}

/// Decodes one datum of `parsed` straight to its JSON form (the same as
/// `codec::avro_to_json(&decode(parsed, bytes)?)`, without the intermediate value), with the
/// same limits and errors as [`decode`].
pub fn decode_json(parsed: &ParsedAvro, bytes: &[u8]) -> RegistryResult<Json> {
    read_all(parsed, bytes, |r| r.json(&parsed.schema, 0))
}

/// Runs `read` over all of `bytes` (bytes left over are an error) and names the path and
/// byte of a failure.
fn read_all<'a, T>(
    parsed: &'a ParsedAvro,
    bytes: &'a [u8],
    read: impl FnOnce(&mut Reader<'a>) -> Res<T>,
) -> RegistryResult<T> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        items_left: bytes.len().saturating_add(ZERO_WIDTH_ITEMS),
        names: &parsed.names,
    };
    let v = read(&mut r).map_err(|f| {
        let mut path = String::from("$");
        for seg in f.path.iter().rev() {
            path.push_str(seg);
        }
        RegistryError::Wire(format!(
            "not a datum of the schema: at {path} (byte {}): {}",
            f.offset, f.reason
        ))
    })?;
    if r.remaining() > 0 {
        return Err(RegistryError::Wire(format!(
            "{} bytes left after the Avro datum",
            r.remaining()
        )));
    }
    Ok(v)
}

fn too_deep(what: &str, path: &str) -> RegistryError {
    RegistryError::Wire(format!(
        "{what} nests deeper than {MAX_DEPTH} levels (the limit) at {path}"
    ))
}

/// Checks that a JSON document nests at most [`MAX_DEPTH`] objects and arrays, without
/// recursing (safe on any value, however built).
pub fn check_json(doc: &Json) -> RegistryResult<()> {
    // (value, depth, path segment index) — the path is rebuilt only on failure
    let mut stack: Vec<(&Json, usize, Vec<String>)> = vec![(doc, 0, Vec::new())];
    while let Some((v, depth, path)) = stack.pop() {
        let depth = depth + usize::from(v.is_object() || v.is_array());
        if depth > MAX_DEPTH {
            return Err(too_deep(
                "the JSON document",
                &format!("${}", path.concat()),
            ));
        }
        match v {
            Json::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    if x.is_object() || x.is_array() {
                        let mut p = path.clone();
                        p.push(format!("[{i}]"));
                        stack.push((x, depth, p));
                    }
                }
            }
            Json::Object(o) => {
                for (k, x) in o {
                    if x.is_object() || x.is_array() {
                        let mut p = path.clone();
                        p.push(format!(".{k}"));
                        stack.push((x, depth, p));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks the nesting of JSON text before it is parsed (one pass over the bytes, brackets
/// inside strings ignored); the error names the byte where the limit is passed.
pub fn check_json_text(text: &[u8]) -> RegistryResult<()> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep("the JSON document", &format!("byte {i}")));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Checks that an Avro value nests at most [`MAX_DEPTH`] records, arrays and maps, without
/// recursing — for values built elsewhere before they are handed to a recursive writer.
pub fn check_value(v: &Value) -> RegistryResult<()> {
    check_value_within(v, MAX_DEPTH)
}

/// Nesting apache-avro's validating writer is given at most: it recurses with large frames
/// (a 100-deep value overflowed a 2 MiB stack in a debug build), so values from elsewhere
/// are held to this before it sees them. Values built from the schema take the crate's own
/// writer, which allows [`MAX_DEPTH`].
pub const VALIDATING_WRITER_MAX_DEPTH: usize = 32;

/// [`check_value`] with another limit.
pub fn check_value_within(v: &Value, limit: usize) -> RegistryResult<()> {
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, depth)) = stack.pop() {
        let depth = depth
            + usize::from(matches!(
                v,
                Value::Record(_) | Value::Array(_) | Value::Map(_)
            ));
        if depth > limit {
            return Err(RegistryError::Wire(format!(
                "the Avro value nests deeper than {limit} levels (the limit of this writer)"
            )));
        }
        match v {
            Value::Union(_, x) => stack.push((x, depth)),
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, depth))),
            Value::Map(m) => stack.extend(m.values().map(|x| (x, depth))),
            Value::Record(f) => stack.extend(f.iter().map(|(_, x)| (x, depth))),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro;
    use proptest::prelude::*;

    const NODE: &str =
        r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#;

    fn chain(levels: usize) -> Vec<u8> {
        let mut d = vec![0x02; levels - 1];
        d.push(0x00);
        d
    }

    #[test]
    fn a_chain_within_the_limit_decodes_and_one_past_it_is_refused() {
        let p = avro::parse(NODE, &[]).unwrap();
        assert!(decode(&p, &chain(MAX_DEPTH)).is_ok());
        let e = decode(&p, &chain(MAX_DEPTH + 1)).unwrap_err().to_string();
        assert!(e.contains("deeper than 100 levels"), "{e}");
        assert!(
            e.contains(&format!("$.{}", vec!["next"; MAX_DEPTH].join("."))),
            "{e}"
        );
        assert!(e.contains(&format!("byte {MAX_DEPTH}")), "{e}");
    }

    #[test]
    fn a_10000_deep_datum_is_an_error_on_a_2_mib_thread() {
        let p = avro::parse(NODE, &[]).unwrap();
        let data = chain(10_001);
        let e = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || decode(&p, &data).map(|_| ()).map_err(|e| e.to_string()))
            .unwrap()
            .join()
            .expect("no stack overflow")
            .unwrap_err();
        assert!(e.contains("deeper than 100 levels"), "{e}");
    }

    #[test]
    fn deep_json_is_refused_by_value_and_by_text() {
        let mut doc = Json::Null;
        for _ in 0..10_000 {
            doc = Json::Array(vec![doc]);
        }
        let e = check_json(&doc).unwrap_err().to_string();
        assert!(
            e.contains("deeper than 100") && e.contains("$[0][0]"),
            "{e}"
        );
        // drop iteratively (serde_json's Drop recurses)
        let mut v = doc;
        while let Json::Array(mut a) = v {
            v = a.pop().unwrap_or(Json::Null);
        }
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        let e = check_json_text(text.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("byte 100"), "{e}");
        assert!(check_json_text(br#"{"a":"[[[[[[[[[[[[[[","b":[1]}"#).is_ok());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(check_json_text(ok.as_bytes()).is_ok());
        assert!(check_json(&serde_json::from_str(&ok).unwrap()).is_ok());
    }

    /// Found by the fuzz target `avro` (fuzz/corpus/avro/regress-empty-decimal): a decimal
    /// of zero bytes decoded, then failed to encode.
    #[test]
    fn an_empty_decimal_is_refused() {
        let p = avro::parse(
            r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":1}"#,
            &[],
        )
        .unwrap();
        let e = decode(&p, &[0x00]).unwrap_err().to_string();
        assert!(e.contains("decimal of zero bytes"), "{e}");
        let v = decode(&p, &[0x02, 0x05]).unwrap();
        let mut out = Vec::new();
        crate::codec::AvroCodec::new(&p)
            .unwrap()
            .encode(&v, &mut out)
            .unwrap();
        assert_eq!(out, [0x02, 0x05]);
    }

    #[test]
    fn malformed_datums_are_named_errors() {
        let p = avro::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"xs","type":{"type":"array","items":"null"}}]}"#,
            &[],
        )
        .unwrap();
        let cases: &[(&[u8], &str)] = &[
            (&[], "ends inside a number"),
            (&[0x0a, b'a'], "longer than the 1 bytes left"),
            (&[0x03], "negative string length"),
            (&[0x02, 0xff], "not UTF-8"),
            (&[0x00, 0xfe, 0xff, 0xff, 0xff, 0x0f], "items is more than"),
            (&[0x00, 0x00, 0x07], "bytes left after"),
            (&[0xff; 11], "runs over 10 bytes"),
        ];
        for (bytes, want) in cases {
            let e = decode(&p, bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{bytes:?}: {e}");
        }
        // a few nulls take no byte and are fine
        assert!(decode(&p, &[0x00, 0x06, 0x00]).is_ok());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let p = avro::parse(NODE, &[]).unwrap();
            let _ = decode(&p, &bytes);
        }
    }
}
