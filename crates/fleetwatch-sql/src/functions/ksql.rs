//! fleetwatch's own implementations of ksqlDB functions: the PII functions (over
//! `fleetwatch-pii`, written once below SQL), `EXTRACTJSONFIELD` and `GEO_DISTANCE`.

use super::{ArgType as T, FunctionContext, FunctionDoc, Udf, Variant, exec, fail};
use arrow::array::{Array, ArrayRef, AsArray, Float64Builder, StringBuilder};
use arrow::datatypes::DataType;
use datafusion_common::{Result as DfResult, ScalarValue};
use datafusion_expr::ColumnarValue;
use fleetwatch_pii::{HashKeys, MaskChars, Span};
use std::sync::Arc;

/// Every UDF of this module.
pub(super) fn all(ctx: &FunctionContext) -> Vec<Arc<dyn Udf>> {
    let mut v: Vec<Arc<dyn Udf>> = [
        "MASK",
        "MASK_KEEP_LEFT",
        "MASK_KEEP_RIGHT",
        "MASK_LEFT",
        "MASK_RIGHT",
    ]
    .into_iter()
    .map(|n| Arc::new(Mask::new(n)) as Arc<dyn Udf>)
    .collect();
    v.push(Arc::new(HashPii::new(ctx.hash_keys.clone())));
    v.push(Arc::new(ExtractJsonField::new()));
    v.push(Arc::new(GeoDistance::new()));
    v.extend(super::datetime::all());
    v.extend(super::math::all());
    v
}

/// The argument as an array of `rows` (scalars repeated).
pub(crate) fn array(v: &ColumnarValue, rows: usize) -> DfResult<ArrayRef> {
    v.to_array(rows)
}

/// A scalar string argument (`None`: NULL), or `Err` when it is a column.
pub(crate) fn scalar_str(v: &ColumnarValue) -> Option<Option<&str>> {
    match v {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s),
        ) => Some(s.as_deref()),
        ColumnarValue::Scalar(ScalarValue::Null) => Some(None),
        _ => None,
    }
}

/// `MASK`, `MASK_KEEP_LEFT`, `MASK_KEEP_RIGHT`, `MASK_LEFT`, `MASK_RIGHT`.
#[derive(Debug)]
struct Mask {
    doc: FunctionDoc,
    counted: bool,
}

impl Mask {
    fn new(name: &'static str) -> Self {
        let counted = name != "MASK";
        let description = match name {
            "MASK" => {
                "Masks every character: upper-case letters as X, lower-case as x, digits as n, others as -; the replacement of each class can be given (NULL keeps that class)."
            }
            "MASK_KEEP_LEFT" => "Masks all but the first n characters.",
            "MASK_KEEP_RIGHT" => "Masks all but the last n characters.",
            "MASK_LEFT" => "Masks the first n characters.",
            _ => "Masks the last n characters.",
        };
        let mut variants = Vec::new();
        let mut args = vec![("input", T::String)];
        if counted {
            args.push(("numChars", T::Int));
        }
        variants.push(Variant::new(
            &args,
            "VARCHAR",
            "with the default replacements",
        ));
        for extra in ["upper", "lower", "digit", "other"] {
            args.push((extra, T::String));
            variants.push(Variant::new(
                &args,
                "VARCHAR",
                "with the given replacements",
            ));
        }
        Mask {
            doc: FunctionDoc {
                name,
                category: "STRING",
                description,
                variants,
            },
            counted,
        }
    }
}

/// A replacement-character argument: NULL keeps the class; else its first character.
fn mask_char(
    v: Option<&ColumnarValue>,
    default: char,
    name: &str,
    what: &str,
) -> DfResult<Option<char>> {
    let Some(v) = v else { return Ok(Some(default)) };
    match scalar_str(v) {
        Some(None) => Ok(None),
        Some(Some(s)) => Ok(s.chars().next()),
        None => fail(name, format!("the {what} replacement must be a constant")),
    }
}

impl Udf for Mask {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let name = self.doc.name;
        let first_char = if self.counted { 2 } else { 1 };
        let chars = MaskChars {
            upper: mask_char(args.get(first_char), 'X', name, "upper-case")?,
            lower: mask_char(args.get(first_char + 1), 'x', name, "lower-case")?,
            digit: mask_char(args.get(first_char + 2), 'n', name, "digit")?,
            other: mask_char(args.get(first_char + 3), '-', name, "other")?,
        };
        let input = array(&args[0], rows)?;
        let input = input.as_string::<i32>();
        let counts = if self.counted {
            Some(array(&args[1], rows)?)
        } else {
            None
        };
        let counts = counts
            .as_ref()
            .map(|c| c.as_primitive::<arrow::datatypes::Int32Type>());
        let mut out = StringBuilder::with_capacity(rows, input.value_data().len());
        let mut scratch = String::new();
        for i in 0..rows {
            if input.is_null(i) {
                out.append_null();
                continue;
            }
            let span = match counts {
                None => Span::All,
                Some(c) if c.is_null(i) => {
                    out.append_null();
                    continue;
                }
                Some(c) => Span::of(name, i64::from(c.value(i))).map_err(exec)?,
            };
            scratch.clear();
            fleetwatch_pii::mask_into(&mut scratch, input.value(i), span, &chars);
            out.append_value(&scratch);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `HASH_PII(value, 'key-name')`: a keyed pseudonym, 64 hex digits.
#[derive(Debug)]
struct HashPii {
    doc: FunctionDoc,
    keys: Option<Arc<HashKeys>>,
}

impl HashPii {
    fn new(keys: Option<Arc<HashKeys>>) -> Self {
        HashPii {
            doc: FunctionDoc {
                name: "HASH_PII",
                category: "STRING",
                description: "A keyed pseudonym of a value: HMAC-SHA-256 with the named key of [pii] hash_key_file, as 64 hex digits. Stable across restarts and servers sharing the key file, so joins on pseudonyms work; not reversible without the key.",
                variants: vec![
                    Variant::new(
                        &[("value", T::String), ("keyName", T::String)],
                        "VARCHAR",
                        "of a string's UTF-8 bytes",
                    ),
                    Variant::new(
                        &[("value", T::Bytes), ("keyName", T::String)],
                        "VARCHAR",
                        "of bytes",
                    ),
                ],
            },
            keys,
        }
    }
}

impl Udf for HashPii {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let Some(keys) = &self.keys else {
            return fail(
                "HASH_PII",
                "no hash keys: set [pii] hash_key_file (lines `name = base64-key`)",
            );
        };
        let key = match scalar_str(&args[1]) {
            Some(Some(k)) => k.to_string(),
            Some(None) => return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            None => return fail("HASH_PII", "the key name must be a constant"),
        };
        if !keys.contains(&key) {
            // The same message as the library's, naming the keys there are.
            return Err(exec(
                keys.hash_pii(b"", &key)
                    .err()
                    .map_or_else(String::new, |e| e.to_string()),
            ));
        }
        let input = array(&args[0], rows)?;
        let mut out = StringBuilder::with_capacity(rows, rows * 64);
        let mut scratch = String::with_capacity(64);
        let mut put = |bytes: Option<&[u8]>| -> DfResult<()> {
            match bytes {
                None => out.append_null(),
                Some(b) => {
                    scratch.clear();
                    keys.hash_into(&mut scratch, b, &key).map_err(exec)?;
                    out.append_value(&scratch);
                }
            }
            Ok(())
        };
        match input.data_type() {
            DataType::Binary => {
                let a = input.as_binary::<i32>();
                for i in 0..rows {
                    put((!a.is_null(i)).then(|| a.value(i)))?;
                }
            }
            _ => {
                let a = input.as_string::<i32>();
                for i in 0..rows {
                    put((!a.is_null(i)).then(|| a.value(i).as_bytes()))?;
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `EXTRACTJSONFIELD(json, '$.path')`.
#[derive(Debug)]
struct ExtractJsonField {
    doc: FunctionDoc,
}

impl ExtractJsonField {
    fn new() -> Self {
        ExtractJsonField {
            doc: FunctionDoc {
                name: "EXTRACTJSONFIELD",
                category: "JSON",
                description: "The value at a JSONPath ($.field.sub, $.array[0], $['name']) of a JSON string, as a string (objects and arrays as JSON text); NULL when absent or when the input is not JSON.",
                variants: vec![Variant::new(
                    &[("json", T::String), ("path", T::String)],
                    "VARCHAR",
                    "",
                )],
            },
        }
    }
}

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
}

/// Parses the subset of JSONPath ksqlDB documents: `$`, `.name`, `['name']`, `[n]`.
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| format!("invalid JSON path {path:?}: {why}");
    let rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| bad("it must start with $"))?;
    let b = rest.as_bytes();
    let mut i = 0;
    let mut steps = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                if j == start {
                    return Err(bad("empty field name"));
                }
                steps.push(Step::Field(rest[start..j].to_string()));
                i = j;
            }
            b'[' => {
                let close = rest[i..].find(']').ok_or_else(|| bad("unclosed ["))? + i;
                let inner = rest[i + 1..close].trim();
                if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    steps.push(Step::Field(q.to_string()));
                } else if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    steps.push(Step::Field(q.to_string()));
                } else {
                    steps.push(Step::Index(
                        inner
                            .parse()
                            .map_err(|_| bad("an index must be a number"))?,
                    ));
                }
                i = close + 1;
            }
            _ => return Err(bad("expected . or [")),
        }
    }
    Ok(steps)
}

#[cfg(test)]
fn extract<'a>(mut v: &'a serde_json::Value, steps: &[Step]) -> Option<&'a serde_json::Value> {
    for s in steps {
        v = match (s, v) {
            (Step::Field(f), serde_json::Value::Object(m)) => m.get(f)?,
            (Step::Index(n), serde_json::Value::Array(a)) => a.get(*n)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The text of the value at `steps` of a JSON document, as written (`None`: absent or the
/// document is not JSON).
fn extract_raw<'a>(doc: &'a str, steps: &[Step]) -> Option<&'a str> {
    use serde_json::value::RawValue;
    let mut cur: &'a RawValue = serde_json::from_str(doc).ok()?;
    for s in steps {
        cur = match s {
            Step::Field(f) => {
                let m: std::collections::HashMap<String, &'a RawValue> =
                    serde_json::from_str(cur.get()).ok()?;
                *m.get(f)?
            }
            Step::Index(n) => {
                let a: Vec<&'a RawValue> = serde_json::from_str(cur.get()).ok()?;
                *a.get(*n)?
            }
        };
    }
    Some(cur.get().trim())
}

/// JSON text without the whitespace between tokens.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

impl Udf for ExtractJsonField {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let constant = match scalar_str(&args[1]) {
            Some(Some(p)) => Some(parse_path(p).map_err(exec)?),
            Some(None) => return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            None => None,
        };
        let input = array(&args[0], rows)?;
        let input = input.as_string::<i32>();
        let paths = if constant.is_none() {
            Some(array(&args[1], rows)?)
        } else {
            None
        };
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        for i in 0..rows {
            if input.is_null(i) {
                out.append_null();
                continue;
            }
            let per_row;
            let steps = match (&constant, &paths) {
                (Some(s), _) => s,
                (None, Some(p)) => {
                    let p = p.as_string::<i32>();
                    if p.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    per_row = parse_path(p.value(i)).map_err(exec)?;
                    &per_row
                }
                (None, None) => unreachable!("one of them is set"),
            };
            match extract_raw(input.value(i), steps) {
                None => out.append_null(),
                Some(raw) => match serde_json::from_str::<serde_json::Value>(raw) {
                    Err(_) | Ok(serde_json::Value::Null) => out.append_null(),
                    Ok(serde_json::Value::String(s)) => out.append_value(s),
                    // Objects and arrays as compact JSON in the order written (as ksqlDB's
                    // Jackson prints them), numbers and booleans as written.
                    Ok(_) => out.append_value(compact(raw)),
                },
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `GEO_DISTANCE(lat1, lon1, lat2, lon2[, 'KM'|'MILES'])`: great-circle distance.
#[derive(Debug)]
struct GeoDistance {
    doc: FunctionDoc,
}

impl GeoDistance {
    fn new() -> Self {
        let four = [
            ("lat1", T::Double),
            ("lon1", T::Double),
            ("lat2", T::Double),
            ("lon2", T::Double),
        ];
        let mut five = four.to_vec();
        five.push(("unit", T::String));
        GeoDistance {
            doc: FunctionDoc {
                name: "GEO_DISTANCE",
                category: "GEOGRAPHIC",
                description: "The great-circle (haversine) distance between two points given in decimal degrees, in km (default) or miles; Earth radius 6371 km.",
                variants: vec![
                    Variant::new(&four, "DOUBLE", "in kilometres"),
                    Variant::new(&five, "DOUBLE", "unit 'KM' or 'MILES'"),
                ],
            },
        }
    }
}

/// Earth's mean radius, as ksqlDB uses it.
const EARTH_RADIUS_KM: f64 = 6371.0;
const KM_PER_MILE: f64 = 1.609_344;

/// The haversine distance in km.
pub(crate) fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

impl Udf for GeoDistance {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let divisor = match args.get(4).map(scalar_str) {
            None => 1.0,
            Some(Some(Some(u))) => match u.to_ascii_uppercase().as_str() {
                "KM" | "KMS" | "KILOMETERS" | "KILOMETRES" => 1.0,
                "MI" | "MILE" | "MILES" => KM_PER_MILE,
                other => {
                    return fail(
                        "GEO_DISTANCE",
                        format!("unknown unit {other:?}: use 'KM' or 'MILES'"),
                    );
                }
            },
            Some(Some(None)) => return Ok(ColumnarValue::Scalar(ScalarValue::Float64(None))),
            Some(None) => return fail("GEO_DISTANCE", "the unit must be a constant"),
        };
        let cols = args[..4]
            .iter()
            .map(|a| array(a, rows))
            .collect::<DfResult<Vec<_>>>()?;
        let c: Vec<_> = cols
            .iter()
            .map(|a| a.as_primitive::<arrow::datatypes::Float64Type>())
            .collect();
        let mut out = Float64Builder::with_capacity(rows);
        for i in 0..rows {
            if c.iter().any(|a| a.is_null(i)) {
                out.append_null();
                continue;
            }
            let (lat1, lon1, lat2, lon2) =
                (c[0].value(i), c[1].value(i), c[2].value(i), c[3].value(i));
            for (v, what, lim) in [
                (lat1, "lat1", 90.0),
                (lon1, "lon1", 180.0),
                (lat2, "lat2", 90.0),
                (lon2, "lon2", 180.0),
            ] {
                if !(-lim..=lim).contains(&v) {
                    return fail(
                        "GEO_DISTANCE",
                        format!("{what} = {v} is out of range (±{lim})"),
                    );
                }
            }
            out.append_value(haversine_km(lat1, lon1, lat2, lon2) / divisor);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let doc: serde_json::Value = serde_json::json!({"a": {"b": [10, {"c": "x"}]}, "n.m": 1});
        let get = |p: &str| extract(&doc, &parse_path(p).unwrap()).cloned();
        assert_eq!(get("$.a.b[0]"), Some(serde_json::json!(10)));
        assert_eq!(get("$.a.b[1].c"), Some(serde_json::json!("x")));
        assert_eq!(get("$['n.m']"), Some(serde_json::json!(1)));
        assert_eq!(get("$.zzz"), None);
        assert!(parse_path("a.b").unwrap_err().contains("must start with $"));
        let raw = r#"{"z": {"b": 1, "a": [1, "x y"]}, "q": "s"}"#;
        let at = |p: &str| extract_raw(raw, &parse_path(p).unwrap()).map(compact);
        assert_eq!(at("$.z").as_deref(), Some(r#"{"b":1,"a":[1,"x y"]}"#));
        assert_eq!(at("$.z.a[1]").as_deref(), Some(r#""x y""#));
        assert_eq!(at("$.nope"), None);
    }

    #[test]
    fn haversine_munich_stuttgart() {
        // Munich (48.1374, 11.5755) to Stuttgart (48.7758, 9.1829): about 190 km.
        let d = haversine_km(48.1374, 11.5755, 48.7758, 9.1829);
        assert!((d - 190.4).abs() < 1.0, "{d}");
        assert_eq!(haversine_km(1.0, 2.0, 1.0, 2.0), 0.0);
    }
}
