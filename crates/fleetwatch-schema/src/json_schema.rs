//! JSON Schema: validation of schema documents (by the `jsonschema` crate; draft 7 and
//! later, chosen by `$schema`), identity, and a documented subset of compatibility rules.
//! No Rust crate checks JSON Schema compatibility, so the rules are owned here.
//!
//! `reader_accepts(reader, writer)`: every document valid under `writer` is valid under
//! `reader`. Checked, recursively through `properties` and `items`:
//!
//! - `type`: the reader's types must include the writer's (`integer` is included in
//!   `number`); a reader without `type` accepts any;
//! - `enum`: the reader's values must include the writer's; a reader adding an `enum` the
//!   writer did not have is incompatible;
//! - `required`: the reader may not require a property the writer did not require;
//! - `properties` / `additionalProperties` (open and closed content models): a property the
//!   writer has and the reader lacks is fine only if the reader is open; a property the
//!   reader adds is fine only if the writer was closed (`additionalProperties: false`), or
//!   the reader's schema for it accepts anything; an open writer read by a closed reader is
//!   incompatible;
//! - `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `minLength`, `maxLength`,
//!   `minItems`, `maxItems`: the reader may not narrow the writer's range.
//!
//! Not covered (a change there is not detected): `oneOf`/`anyOf`/`allOf`/`not`, `$ref`,
//! `patternProperties`, `dependencies`/`dependentRequired`, `if`/`then`/`else`, `pattern`,
//! `format`, `const`, `contains`, `uniqueItems`, tuple `items`/`prefixItems`.

use crate::error::{RegistryError, RegistryResult};
use serde_json::{Map, Value};

/// Parses a JSON Schema document and checks that it compiles with its references: each
/// `(name, document)` is reachable by `"$ref": name` (a relative name such as
/// `address.json`, as Confluent's serializers write it, or an absolute URI).
pub fn parse_with_references(text: &str, references: &[(String, Value)]) -> RegistryResult<Value> {
    let v = parse(text)?;
    if v.is_boolean() {
        return Ok(v);
    }
    let mut registry = jsonschema::Registry::new();
    for (name, doc) in references {
        let uri = if name.contains(':') {
            name.clone()
        } else {
            format!("json-schema:///{}", name.trim_start_matches('/'))
        };
        registry = registry.add(uri.as_str(), doc.clone()).map_err(|e| {
            RegistryError::InvalidSchema(format!("JSON Schema reference {name:?}: {e}"))
        })?;
    }
    let registry = registry
        .prepare()
        .map_err(|e| RegistryError::InvalidSchema(format!("JSON Schema references: {e}")))?;
    jsonschema::options()
        .with_registry(&registry)
        .build(&v)
        .map_err(|e| RegistryError::InvalidSchema(format!("JSON Schema: {e}")))?;
    Ok(v)
}

/// Parses and validates a JSON Schema document (against its meta-schema; `$ref`s are not
/// followed — see [`parse_with_references`]).
pub fn parse(text: &str) -> RegistryResult<Value> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| RegistryError::InvalidSchema(format!("JSON Schema: not JSON: {e}")))?;
    if !(v.is_object() || v.is_boolean()) {
        return Err(RegistryError::InvalidSchema(
            "JSON Schema: a schema must be an object or a boolean".into(),
        ));
    }
    jsonschema::meta::validate(&v)
        .map_err(|e| RegistryError::InvalidSchema(format!("JSON Schema: {e}")))?;
    Ok(v)
}

/// Compact JSON with sorted keys.
pub fn identity(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn types_of(s: &Map<String, Value>) -> Option<Vec<String>> {
    match s.get("type")? {
        Value::String(t) => Some(vec![t.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    }
}

fn is_open(s: &Map<String, Value>) -> bool {
    !matches!(s.get("additionalProperties"), Some(Value::Bool(false)))
}

fn accepts_anything(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Why some document valid under `writer` is invalid under `reader` (empty: none is).
pub fn reader_accepts(reader: &Value, writer: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(reader, writer, "#", &mut out);
    out
}

fn check(reader: &Value, writer: &Value, path: &str, out: &mut Vec<String>) {
    if accepts_anything(reader) {
        return;
    }
    if matches!(writer, Value::Bool(false)) {
        return;
    }
    let (Value::Object(r), Value::Object(w)) = (reader, writer) else {
        out.push(format!(
            "{path}: the reader's schema is narrower than the writer's (boolean schema)"
        ));
        return;
    };
    // type
    if let Some(rt) = types_of(r) {
        match types_of(w) {
            None => out.push(format!(
                "TYPE_NARROWED: {path}: the reader only accepts {rt:?}, the writer any type"
            )),
            Some(wt) => {
                for t in &wt {
                    let ok = rt.contains(t) || (t == "integer" && rt.iter().any(|x| x == "number"));
                    if !ok {
                        out.push(format!("TYPE_CHANGED: {path}: the writer's type {t:?} is not accepted by the reader ({rt:?})"));
                    }
                }
            }
        }
    }
    // enum
    if let Some(Value::Array(re)) = r.get("enum") {
        match w.get("enum") {
            Some(Value::Array(we)) => {
                let missing: Vec<&Value> = we.iter().filter(|v| !re.contains(v)).collect();
                if !missing.is_empty() {
                    out.push(format!("ENUM_ARRAY_NARROWED: {path}: the reader's enum lacks {missing:?}"));
                }
            }
            _ => out.push(format!("ENUM_ARRAY_ADDED: {path}: the reader restricts values to an enum the writer did not have")),
        }
    }
    // numeric and size bounds
    for (key, lower) in [
        ("minimum", true),
        ("exclusiveMinimum", true),
        ("minLength", true),
        ("minItems", true),
        ("maximum", false),
        ("exclusiveMaximum", false),
        ("maxLength", false),
        ("maxItems", false),
    ] {
        if let Some(rv) = r.get(key).and_then(Value::as_f64) {
            let narrowed = match w.get(key).and_then(Value::as_f64) {
                None => true,
                Some(wv) => {
                    if lower {
                        rv > wv
                    } else {
                        rv < wv
                    }
                }
            };
            if narrowed {
                out.push(format!("{}_NARROWED: {path}: the reader's {key} {rv} excludes values the writer allows", key.to_ascii_uppercase()));
            }
        }
    }
    // required
    let req = |m: &Map<String, Value>| -> Vec<String> {
        m.get("required")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (rreq, wreq) = (req(r), req(w));
    for p in &rreq {
        if !wreq.contains(p) {
            out.push(format!("REQUIRED_ATTRIBUTE_ADDED: {path}: the reader requires property {p:?}, which the writer does not"));
        }
    }
    // properties and content models
    let empty = Map::new();
    let rprops = r
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let wprops = w
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let object_like = |m: &Map<String, Value>| {
        m.contains_key("properties")
            || m.contains_key("additionalProperties")
            || types_of(m).is_some_and(|t| t.iter().any(|x| x == "object"))
    };
    if object_like(r) || object_like(w) {
        if is_open(w) && !is_open(r) {
            out.push(format!("ADDITIONAL_PROPERTIES_NARROWED: {path}: the writer's content model is open, the reader's closed"));
        }
        for (name, ws) in wprops {
            match rprops.get(name) {
                Some(rs) => check(rs, ws, &format!("{path}/properties/{name}"), out),
                None => {
                    if let Some(ap) = r.get("additionalProperties")
                        && ap.is_object()
                    {
                        check(ap, ws, &format!("{path}/properties/{name}"), out);
                    } else if !is_open(r) {
                        out.push(format!("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL: {path}: property {name:?} of the writer is not allowed by the reader"));
                    }
                }
            }
        }
        for (name, rs) in rprops {
            if !wprops.contains_key(name) && is_open(w) && !accepts_anything(rs) {
                out.push(format!("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL: {path}: the reader constrains property {name:?}, which the writer's open content model allows with any value"));
            }
        }
    }
    // arrays
    if let (Some(ri), Some(wi)) = (r.get("items"), w.get("items")) {
        check(ri, wi, &format!("{path}/items"), out);
    } else if let Some(ri) = r.get("items")
        && !accepts_anything(ri)
        && types_of(w).is_some_and(|t| t.iter().any(|x| x == "array"))
    {
        out.push(format!(
            "ITEMS_NARROWED: {path}: the reader constrains array items the writer left open"
        ));
    }
}
