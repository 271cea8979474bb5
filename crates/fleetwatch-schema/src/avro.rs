//! Avro schemas: parsing (with references) by `apache-avro`, the identity of a schema, and
//! the schema-resolution rules that decide compatibility — owned here as a rule table, so
//! that verdicts match Confluent's (Avro Java `SchemaCompatibility`).
//!
//! `can_read(reader, writer)` is true when data written with `writer` can be read with
//! `reader`:
//!
//! | writer → reader | rule |
//! |---|---|
//! | same primitive | yes |
//! | int → long, float, double; long → float, double; float → double | promotion |
//! | string ↔ bytes | promotion |
//! | writer union | every branch must be readable by the reader |
//! | reader union (writer not a union) | some branch must read the writer |
//! | record → record | same name (or a reader alias); each reader field is read from the writer field of the same name (or an alias), or has a default; extra writer fields are skipped |
//! | enum → enum | same name; every writer symbol exists in the reader, unless the reader has a default symbol |
//! | array, map | items / values compatible |
//! | fixed → fixed | same name and size |
//!
//! Logical types are compared as their underlying types. Recursive types are handled:
//! a (reader, writer) pair of named types already being checked is assumed compatible.

use crate::error::{RegistryError, RegistryResult};
use apache_avro::Schema;
use apache_avro::schema::{EnumSchema, InnerDecimalSchema, Name, RecordSchema, UuidSchema};
use std::collections::{HashMap, HashSet};

/// A parsed Avro schema with the named types it (and its references) define.
#[derive(Debug, Clone)]
pub struct ParsedAvro {
    /// The schema.
    pub schema: Schema,
    /// Named types by full name.
    pub names: HashMap<String, Schema>,
    /// The referenced schemas it was parsed with.
    pub deps: Vec<Schema>,
}

/// Parses `text`, resolving names against `references` (the texts of referenced schemas,
/// each a named type).
pub fn parse(text: &str, references: &[String]) -> RegistryResult<ParsedAvro> {
    let invalid = |e: apache_avro::Error| RegistryError::InvalidSchema(format!("Avro: {e}"));
    let (schema, deps) = if references.is_empty() {
        (Schema::parse_str(text).map_err(invalid)?, Vec::new())
    } else {
        Schema::parse_str_with_list(text, references).map_err(invalid)?
    };
    let mut names = HashMap::new();
    collect_names(&schema, &mut names);
    for d in &deps {
        collect_names(d, &mut names);
    }
    Ok(ParsedAvro {
        schema,
        names,
        deps,
    })
}

fn collect_names(s: &Schema, out: &mut HashMap<String, Schema>) {
    match s {
        Schema::Record(r) if out.insert(r.name.fullname(None), s.clone()).is_none() => {
            for f in &r.fields {
                collect_names(&f.schema, out);
            }
        }
        Schema::Enum(e) => {
            out.insert(e.name.fullname(None), s.clone());
        }
        Schema::Fixed(f) | Schema::Duration(f) => {
            out.insert(f.name.fullname(None), s.clone());
        }
        Schema::Array(a) => collect_names(&a.items, out),
        Schema::Map(m) => collect_names(&m.types, out),
        Schema::Union(u) => {
            for v in u.variants() {
                collect_names(v, out);
            }
        }
        _ => {}
    }
}

/// Compact JSON with sorted keys: the stored text and the identity of a schema (keeps
/// defaults, docs and aliases, unlike the Parsing Canonical Form). With `normalize`,
/// `{"type":"int"}` without other attributes also becomes `"int"`.
pub fn identity(text: &str, normalize: bool) -> RegistryResult<String> {
    let mut v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| RegistryError::InvalidSchema(format!("Avro: not JSON: {e}")))?;
    if normalize {
        normalize_value(&mut v);
    }
    serde_json::to_string(&v).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

fn normalize_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (_, x) in m.iter_mut() {
                normalize_value(x);
            }
            if m.len() == 1
                && let Some(Value::String(t)) = m.get("type")
                && matches!(
                    t.as_str(),
                    "null" | "boolean" | "int" | "long" | "float" | "double" | "bytes" | "string"
                )
            {
                *v = Value::String(t.clone());
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_value),
        _ => {}
    }
}

/// The shape of a schema for the rules, logical types reduced to their base types.
enum Kind<'a> {
    Prim(&'static str),
    Array(&'a Schema),
    Map(&'a Schema),
    Union(&'a [Schema]),
    Record(&'a RecordSchema),
    Enum(&'a EnumSchema),
    Fixed(&'a Name, usize),
}

fn kind(s: &Schema) -> Kind<'_> {
    use Schema as S;
    match s {
        S::Null => Kind::Prim("null"),
        S::Boolean => Kind::Prim("boolean"),
        S::Int | S::Date | S::TimeMillis => Kind::Prim("int"),
        S::Long
        | S::TimeMicros
        | S::TimestampMillis
        | S::TimestampMicros
        | S::TimestampNanos
        | S::LocalTimestampMillis
        | S::LocalTimestampMicros
        | S::LocalTimestampNanos => Kind::Prim("long"),
        S::Float => Kind::Prim("float"),
        S::Double => Kind::Prim("double"),
        S::Bytes | S::BigDecimal => Kind::Prim("bytes"),
        S::String => Kind::Prim("string"),
        S::Uuid(UuidSchema::String) => Kind::Prim("string"),
        S::Uuid(UuidSchema::Bytes) => Kind::Prim("bytes"),
        S::Uuid(UuidSchema::Fixed(f)) | S::Fixed(f) | S::Duration(f) => {
            Kind::Fixed(&f.name, f.size)
        }
        S::Decimal(d) => match &d.inner {
            InnerDecimalSchema::Bytes => Kind::Prim("bytes"),
            InnerDecimalSchema::Fixed(f) => Kind::Fixed(&f.name, f.size),
        },
        S::Array(a) => Kind::Array(&a.items),
        S::Map(m) => Kind::Map(&m.types),
        S::Union(u) => Kind::Union(u.variants()),
        S::Record(r) => Kind::Record(r),
        S::Enum(e) => Kind::Enum(e),
        // unresolved references are resolved by the caller; treat as an opaque type
        S::Ref { .. } => Kind::Prim("ref"),
    }
}

fn describe(s: &Schema) -> String {
    match kind(s) {
        Kind::Prim(p) => p.to_string(),
        Kind::Array(_) => "array".into(),
        Kind::Map(_) => "map".into(),
        Kind::Union(_) => "union".into(),
        Kind::Record(r) => format!("record {}", r.name.fullname(None)),
        Kind::Enum(e) => format!("enum {}", e.name.fullname(None)),
        Kind::Fixed(n, size) => format!("fixed {} ({size})", n.fullname(None)),
    }
}

struct Ctx<'a> {
    reader: &'a ParsedAvro,
    writer: &'a ParsedAvro,
    seen: HashSet<(String, String)>,
}

/// Follows a named reference to its definition (other schemas are returned as they are).
pub(crate) fn resolve<'a>(s: &'a Schema, names: &'a HashMap<String, Schema>) -> &'a Schema {
    match s {
        Schema::Ref { name } => names.get(&name.fullname(None)).unwrap_or(s),
        _ => s,
    }
}

fn names_match(
    reader: &Name,
    reader_aliases: &Option<Vec<apache_avro::schema::Alias>>,
    writer: &Name,
) -> bool {
    reader.name() == writer.name()
        || reader.fullname(None) == writer.fullname(None)
        || reader_aliases.as_ref().is_some_and(|al| {
            al.iter()
                .any(|a| a.fullname(None) == writer.fullname(None) || a.name() == writer.name())
        })
}

/// Why data written with `writer` cannot be read with `reader` (empty: it can).
pub fn can_read(reader: &ParsedAvro, writer: &ParsedAvro) -> Vec<String> {
    let mut ctx = Ctx {
        reader,
        writer,
        seen: HashSet::new(),
    };
    let mut reasons = Vec::new();
    check(&mut ctx, &reader.schema, &writer.schema, "", &mut reasons);
    reasons
}

fn check(ctx: &mut Ctx<'_>, r: &Schema, w: &Schema, path: &str, out: &mut Vec<String>) {
    let r = resolve(r, &ctx.reader.names);
    let w = resolve(w, &ctx.writer.names);
    let at = if path.is_empty() { "/" } else { path };
    match (kind(r), kind(w)) {
        (_, Kind::Union(wv)) => {
            for (i, wb) in wv.iter().enumerate() {
                let mut sub = Vec::new();
                check(ctx, r, wb, &format!("{path}/{i}"), &mut sub);
                if !sub.is_empty() {
                    out.push(format!(
                        "MISSING_UNION_BRANCH: the new reader cannot read the writer's union branch {} at '{at}' ({})",
                        describe(resolve(wb, &ctx.writer.names)),
                        sub.join("; ")
                    ));
                }
            }
        }
        (Kind::Union(rv), _) => {
            let ok = rv.iter().any(|rb| {
                let mut sub = Vec::new();
                check(ctx, rb, w, path, &mut sub);
                sub.is_empty()
            });
            if !ok {
                out.push(format!(
                    "MISSING_UNION_BRANCH: no branch of the reader's union at '{at}' can read the writer's {}",
                    describe(w)
                ));
            }
        }
        (Kind::Prim(a), Kind::Prim(b)) => {
            let ok = a == b
                || matches!(
                    (b, a),
                    ("int", "long" | "float" | "double")
                        | ("long", "float" | "double")
                        | ("float", "double")
                        | ("string", "bytes")
                        | ("bytes", "string")
                );
            if !ok {
                out.push(format!(
                    "TYPE_MISMATCH: reader type {a} at '{at}' cannot read writer type {b}"
                ));
            }
        }
        (Kind::Array(ri), Kind::Array(wi)) => check(ctx, ri, wi, &format!("{path}/items"), out),
        (Kind::Map(rv), Kind::Map(wv)) => check(ctx, rv, wv, &format!("{path}/values"), out),
        (Kind::Fixed(rn, rs), Kind::Fixed(wn, ws)) => {
            if rn.name() != wn.name() {
                out.push(format!(
                    "NAME_MISMATCH: fixed {} at '{at}' cannot read fixed {}",
                    rn.fullname(None),
                    wn.fullname(None)
                ));
            } else if rs != ws {
                out.push(format!(
                    "FIXED_SIZE_MISMATCH: fixed {} at '{at}' has size {rs} in the reader and {ws} in the writer",
                    rn.fullname(None)
                ));
            }
        }
        (Kind::Enum(re), Kind::Enum(we)) => {
            if !names_match(&re.name, &re.aliases, &we.name) {
                out.push(format!(
                    "NAME_MISMATCH: enum {} at '{at}' cannot read enum {}",
                    re.name.fullname(None),
                    we.name.fullname(None)
                ));
                return;
            }
            if re.default.is_none() {
                let missing: Vec<&String> = we
                    .symbols
                    .iter()
                    .filter(|s| !re.symbols.contains(s))
                    .collect();
                if !missing.is_empty() {
                    out.push(format!(
                        "MISSING_ENUM_SYMBOLS: the reader's enum {} at '{at}' lacks {:?} and has no default",
                        re.name.fullname(None),
                        missing
                    ));
                }
            }
        }
        (Kind::Record(rr), Kind::Record(wr)) => {
            if !names_match(&rr.name, &rr.aliases, &wr.name) {
                out.push(format!(
                    "NAME_MISMATCH: record {} at '{at}' cannot read record {}",
                    rr.name.fullname(None),
                    wr.name.fullname(None)
                ));
                return;
            }
            let key = (rr.name.fullname(None), wr.name.fullname(None));
            if !ctx.seen.insert(key.clone()) {
                return;
            }
            for rf in &rr.fields {
                let wf = wr
                    .fields
                    .iter()
                    .find(|wf| wf.name == rf.name || rf.aliases.iter().any(|a| a == &wf.name));
                match wf {
                    Some(wf) => check(ctx, &rf.schema, &wf.schema, &format!("{path}/fields/{}", rf.name), out),
                    None if rf.default.is_none() => out.push(format!(
                        "READER_FIELD_MISSING_DEFAULT_VALUE: the field '{}' at '{path}/fields/{}' has no default value and is missing in the writer's schema",
                        rf.name, rf.name
                    )),
                    None => {}
                }
            }
            ctx.seen.remove(&key);
        }
        _ => out.push(format!(
            "TYPE_MISMATCH: reader type {} at '{at}' cannot read writer type {}",
            describe(r),
            describe(w)
        )),
    }
}

/// Refuses a schema with a record that has no finite value: one whose required fields
/// lead back to itself (`{"name":"me","type":"Loop"}` in record `Loop`, or `A.b → B.a → A`)
/// with no way out. A way out is a union with a branch that has a finite value (`["null",
/// "Node"]`), an array or a map (they may be empty). Computed as a least fixpoint over the
/// named records (no recursion on the schema's depth); the error names the field path of
/// the cycle.
pub fn check_finite(parsed: &ParsedAvro) -> RegistryResult<()> {
    let mut records: Vec<(String, &RecordSchema)> = parsed
        .names
        .values()
        .filter_map(|s| match s {
            Schema::Record(r) => Some((r.name.fullname(None), r)),
            _ => None,
        })
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let mut finite: HashSet<String> = HashSet::new();
    loop {
        let mut changed = false;
        for (name, r) in &records {
            if !finite.contains(name)
                && r.fields
                    .iter()
                    .all(|f| has_finite_value(&f.schema, &finite, &parsed.names))
            {
                finite.insert(name.clone());
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // the root first, when it is one of them; else the first by name
    let root = match &parsed.schema {
        Schema::Record(r) => Some(r.name.fullname(None)),
        _ => None,
    };
    let Some((start, _)) = root
        .filter(|n| !finite.contains(n))
        .and_then(|n| records.iter().find(|(m, _)| *m == n))
        .or_else(|| records.iter().find(|(n, _)| !finite.contains(n)))
    else {
        return Ok(());
    };
    // follow the first field without a finite value until a record repeats
    let mut steps: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut at = start.clone();
    while seen.insert(at.clone()) {
        let Some((_, r)) = records.iter().find(|(n, _)| *n == at) else {
            break;
        };
        let Some(f) = r
            .fields
            .iter()
            .find(|f| !has_finite_value(&f.schema, &finite, &parsed.names))
        else {
            break;
        };
        steps.push(format!("{at}.{}", f.name));
        match infinite_record(&f.schema, &finite, &parsed.names) {
            Some(next) => at = next,
            None => break,
        }
    }
    steps.push(at);
    Err(RegistryError::InvalidSchema(format!(
        "Avro: record {start} has no finite value: the required fields {} lead back to a record already on the path with no way out (make one of them a union with null, an array or a map)",
        steps.join(" → ")
    )))
}

/// Whether `s` has a finite value, given the records known to have one.
fn has_finite_value(s: &Schema, finite: &HashSet<String>, names: &HashMap<String, Schema>) -> bool {
    match resolve(s, names) {
        Schema::Record(r) => finite.contains(&r.name.fullname(None)),
        // a union's branches are not unions: this recursion is one level deep
        Schema::Union(u) => u
            .variants()
            .iter()
            .any(|v| has_finite_value(v, finite, names)),
        _ => true,
    }
}

/// The record without a finite value that `s` leads to (the first such union branch).
fn infinite_record(
    s: &Schema,
    finite: &HashSet<String>,
    names: &HashMap<String, Schema>,
) -> Option<String> {
    match resolve(s, names) {
        Schema::Record(r) => Some(r.name.fullname(None)),
        Schema::Union(u) => u.variants().iter().find_map(|v| match resolve(v, names) {
            Schema::Record(r) if !finite.contains(&r.name.fullname(None)) => {
                Some(r.name.fullname(None))
            }
            _ => None,
        }),
        _ => None,
    }
}
