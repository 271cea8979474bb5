//! The Avro decoder: a plan compiled once from the writer schema against the columns, walked
//! per datum straight into the column builders (no `apache_avro::types::Value` per row).
//!
//! Writer record fields are matched to columns exactly first, then ignoring ASCII case;
//! writer fields without a column are skipped with a skip plan (every Avro type, arrays and
//! maps by blocks, negative block counts with their byte sizes, recursive named types up to
//! 100 levels deep); columns without a writer field are null. Every length is checked against
//! the bytes left before anything is read, so garbage is an error, never a panic or a large
//! allocation.

use crate::RowDecoder;
use crate::builder::{Allowed, Col, Columns, Kind, Row, sql_name};
use crate::error::{FormatError, RowError};
use crate::num::pow10;
use apache_avro::Schema as Avro;
use apache_avro::schema::{InnerDecimalSchema, UuidSchema};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use std::collections::HashMap;
use std::sync::Arc;

/// Deepest nesting of a skipped (recursive) value.
const MAX_SKIP_DEPTH: usize = 100;
/// Most items of a zero-byte type one array or map block may claim.
const MAX_ZERO_SIZE_ITEMS: i64 = 1 << 16;

/// How to skip a writer value.
#[derive(Debug, Clone)]
enum Skip {
    Null,
    Bool,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    Fixed(usize),
    Array(usize, bool),
    Map(usize, bool),
    Union(Vec<usize>),
    Record(Vec<usize>),
}

/// How to read a writer value into a column (the conversion is the column's kind).
#[derive(Debug)]
enum Read {
    Null,
    Union {
        null: Option<i64>,
        value: i64,
        inner: Box<Read>,
    },
    Bool,
    Int,
    Long,
    TsMicros,
    Float,
    Double,
    Bytes,
    Enum(Vec<String>),
    Fixed(usize),
    Decimal {
        fixed: Option<usize>,
        scale: i8,
    },
    Array(Box<Read>, bool),
    Map(Box<Read>, bool),
    Record(Vec<FieldPlan>),
}

#[derive(Debug)]
enum FieldPlan {
    Col(usize, Read),
    Skip(usize),
}

#[derive(Debug)]
enum Top {
    Record(Vec<FieldPlan>),
    NullableRecord {
        null: i64,
        value: i64,
        fields: Vec<FieldPlan>,
    },
    Single(Read),
}

/// Decodes Avro binary datums (the caller has stripped any Confluent wire header) written
/// with a known writer schema into a [`RecordBatch`].
///
/// Conversions: `int` → `INT`/`BIGINT`/`DOUBLE`; `long` → `BIGINT`/`DOUBLE`; `float`,
/// `double` → `DOUBLE`; `string`, `enum` (its symbol), `uuid` strings → `STRING`; `bytes`,
/// `fixed` → `BYTES`; `timestamp-millis`, `timestamp-micros` (÷ 1000, floored) →
/// `TIMESTAMP`; `date` → `DATE`; `time-millis` → `TIME`; `decimal` (bytes or fixed) →
/// `DECIMAL` (rescaled, refused when it needs rounding or more digits); `array`, `map`,
/// `record` → `ARRAY`, `MAP`, `STRUCT`; a union `["null", T]` (either order) is a nullable
/// `T`. Other unions are refused for a column (and skipped when no column reads them).
/// A writer that is not a record (or a nullable record) is the value of a single column.
pub struct AvroDecoder {
    cols: Columns,
    top: Top,
    skips: Vec<Skip>,
}

/// The named types of a schema, by full name.
fn collect_names<'a>(s: &'a Avro, out: &mut HashMap<String, &'a Avro>) {
    match s {
        Avro::Record(r) if out.insert(r.name.fullname(None), s).is_none() => {
            for f in &r.fields {
                collect_names(&f.schema, out);
            }
        }
        Avro::Enum(e) => {
            out.insert(e.name.fullname(None), s);
        }
        Avro::Fixed(f) | Avro::Duration(f) => {
            out.insert(f.name.fullname(None), s);
        }
        Avro::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                out.insert(f.name.fullname(None), s);
            }
        }
        Avro::Uuid(UuidSchema::Fixed(f)) => {
            out.insert(f.name.fullname(None), s);
        }
        Avro::Array(a) => collect_names(&a.items, out),
        Avro::Map(m) => collect_names(&m.types, out),
        Avro::Union(u) => {
            for v in u.variants() {
                collect_names(v, out);
            }
        }
        _ => {}
    }
}

struct Compiler<'a> {
    names: HashMap<String, &'a Avro>,
    skips: Vec<Skip>,
    skip_named: HashMap<String, usize>,
}

fn avro_name(s: &Avro) -> String {
    match s {
        Avro::Null => "null".into(),
        Avro::Boolean => "boolean".into(),
        Avro::Int => "int".into(),
        Avro::Long => "long".into(),
        Avro::Float => "float".into(),
        Avro::Double => "double".into(),
        Avro::Bytes => "bytes".into(),
        Avro::String => "string".into(),
        Avro::Array(_) => "array".into(),
        Avro::Map(_) => "map".into(),
        Avro::Union(_) => "union".into(),
        Avro::Record(r) => format!("record {}", r.name.fullname(None)),
        Avro::Enum(_) => "enum".into(),
        Avro::Fixed(_) => "fixed".into(),
        Avro::Decimal(_) | Avro::BigDecimal => "decimal".into(),
        Avro::Uuid(_) => "uuid".into(),
        Avro::Date => "date".into(),
        Avro::TimeMillis => "time-millis".into(),
        Avro::TimeMicros => "time-micros".into(),
        Avro::TimestampMillis => "timestamp-millis".into(),
        Avro::TimestampMicros => "timestamp-micros".into(),
        Avro::TimestampNanos => "timestamp-nanos".into(),
        Avro::LocalTimestampMillis => "local-timestamp-millis".into(),
        Avro::LocalTimestampMicros => "local-timestamp-micros".into(),
        Avro::LocalTimestampNanos => "local-timestamp-nanos".into(),
        Avro::Duration(_) => "duration".into(),
        Avro::Ref { name } => name.fullname(None),
    }
}

impl<'a> Compiler<'a> {
    fn resolve(&self, s: &'a Avro, path: &str) -> Result<&'a Avro, FormatError> {
        match s {
            Avro::Ref { name } => self
                .names
                .get(&name.fullname(None))
                .copied()
                .ok_or_else(|| {
                    FormatError::Schema(format!(
                        "column {path}: the writer schema names an unknown type {}",
                        name.fullname(None)
                    ))
                }),
            _ => Ok(s),
        }
    }

    /// Whether a value of the type can take zero bytes.
    fn zero_size(&self, s: &'a Avro, depth: usize) -> bool {
        if depth > MAX_SKIP_DEPTH {
            return false;
        }
        match s {
            Avro::Null => true,
            Avro::Fixed(f) => f.size == 0,
            Avro::Record(r) => r
                .fields
                .iter()
                .all(|f| self.zero_size(&f.schema, depth + 1)),
            Avro::Ref { name } => self
                .names
                .get(&name.fullname(None))
                .is_some_and(|s| self.zero_size(s, depth + 1)),
            _ => false,
        }
    }

    fn skip(&mut self, s: &'a Avro) -> usize {
        let simple = match s {
            Avro::Null => Some(Skip::Null),
            Avro::Boolean => Some(Skip::Bool),
            Avro::Int | Avro::Date | Avro::TimeMillis | Avro::Enum(_) => Some(Skip::Int),
            Avro::Long
            | Avro::TimeMicros
            | Avro::TimestampMillis
            | Avro::TimestampMicros
            | Avro::TimestampNanos
            | Avro::LocalTimestampMillis
            | Avro::LocalTimestampMicros
            | Avro::LocalTimestampNanos => Some(Skip::Long),
            Avro::Float => Some(Skip::Float),
            Avro::Double => Some(Skip::Double),
            Avro::Bytes
            | Avro::String
            | Avro::BigDecimal
            | Avro::Uuid(UuidSchema::Bytes | UuidSchema::String) => Some(Skip::Bytes),
            Avro::Fixed(f) | Avro::Duration(f) | Avro::Uuid(UuidSchema::Fixed(f)) => {
                Some(Skip::Fixed(f.size))
            }
            Avro::Decimal(d) => Some(match &d.inner {
                InnerDecimalSchema::Bytes => Skip::Bytes,
                InnerDecimalSchema::Fixed(f) => Skip::Fixed(f.size),
            }),
            _ => None,
        };
        if let Some(k) = simple {
            self.skips.push(k);
            return self.skips.len() - 1;
        }
        match s {
            Avro::Array(a) => {
                let z = self.zero_size(&a.items, 0);
                let item = self.skip(&a.items);
                self.skips.push(Skip::Array(item, z));
                self.skips.len() - 1
            }
            Avro::Map(m) => {
                let z = self.zero_size(&m.types, 0);
                let v = self.skip(&m.types);
                self.skips.push(Skip::Map(v, z));
                self.skips.len() - 1
            }
            Avro::Union(u) => {
                let vs = u.variants().iter().map(|v| self.skip(v)).collect();
                self.skips.push(Skip::Union(vs));
                self.skips.len() - 1
            }
            Avro::Record(r) => {
                let full = r.name.fullname(None);
                if let Some(&i) = self.skip_named.get(&full) {
                    return i;
                }
                self.skips.push(Skip::Null);
                let idx = self.skips.len() - 1;
                self.skip_named.insert(full, idx);
                let fs = r.fields.iter().map(|f| self.skip(&f.schema)).collect();
                self.skips[idx] = Skip::Record(fs);
                idx
            }
            Avro::Ref { name } => {
                let full = name.fullname(None);
                if let Some(&i) = self.skip_named.get(&full) {
                    return i;
                }
                match self.names.get(&full).copied() {
                    Some(t) => self.skip(t),
                    None => {
                        // Unknown names are refused when parsed; skip as nothing.
                        self.skips.push(Skip::Null);
                        self.skips.len() - 1
                    }
                }
            }
            _ => {
                self.skips.push(Skip::Null);
                self.skips.len() - 1
            }
        }
    }

    fn record(
        &mut self,
        fields: &'a [apache_avro::schema::RecordField],
        row: &Row,
        path: Option<&str>,
    ) -> Result<Vec<FieldPlan>, FormatError> {
        let mut used = vec![false; row.cols.len()];
        let mut plans = Vec::with_capacity(fields.len());
        for f in fields {
            let name = f.name.as_bytes();
            let exact = row.cols.iter().position(|c| c.name.as_bytes() == name);
            let found = exact.or_else(|| {
                row.cols
                    .iter()
                    .enumerate()
                    .position(|(i, c)| !used[i] && c.name.as_bytes().eq_ignore_ascii_case(name))
            });
            match found {
                Some(ci) if !used[ci] => {
                    used[ci] = true;
                    let col = &row.cols[ci];
                    let p = match path {
                        Some(p) => format!("{p}->{}", col.name),
                        None => col.name.clone(),
                    };
                    plans.push(FieldPlan::Col(ci, self.read(&f.schema, col, &p)?));
                }
                _ => plans.push(FieldPlan::Skip(self.skip(&f.schema))),
            }
        }
        Ok(plans)
    }

    fn read(&mut self, s: &'a Avro, col: &Col, path: &str) -> Result<Read, FormatError> {
        let s = self.resolve(s, path)?;
        let mismatch = || {
            FormatError::Schema(format!(
                "column {path}: the writer's {} cannot be read as {}",
                avro_name(s),
                sql_name(&col.kind)
            ))
        };
        let k = &col.kind;
        Ok(match s {
            Avro::Null => Read::Null,
            Avro::Union(u) => {
                let vs = u.variants();
                let nulls: Vec<usize> = (0..vs.len())
                    .filter(|&i| matches!(vs[i], Avro::Null))
                    .collect();
                let others: Vec<usize> = (0..vs.len())
                    .filter(|&i| !matches!(vs[i], Avro::Null))
                    .collect();
                if nulls.len() > 1 || others.len() > 1 {
                    return Err(FormatError::Schema(format!(
                        "column {path}: the writer's union {} is not [\"null\", T]",
                        vs.iter().map(avro_name).collect::<Vec<_>>().join(", ")
                    )));
                }
                match others.first() {
                    None => Read::Null,
                    Some(&v) => Read::Union {
                        null: nulls.first().map(|&n| n as i64),
                        value: v as i64,
                        inner: Box::new(self.read(&vs[v], col, path)?),
                    },
                }
            }
            Avro::Boolean if matches!(k, Kind::Bool(_)) => Read::Bool,
            Avro::Int if matches!(k, Kind::Int(_) | Kind::BigInt(_) | Kind::Double(_)) => Read::Int,
            Avro::Long if matches!(k, Kind::BigInt(_) | Kind::Double(_)) => Read::Long,
            Avro::Float if matches!(k, Kind::Double(_)) => Read::Float,
            Avro::Double if matches!(k, Kind::Double(_)) => Read::Double,
            Avro::String | Avro::Uuid(UuidSchema::String) if matches!(k, Kind::Str { .. }) => {
                Read::Bytes
            }
            Avro::Enum(e) if matches!(k, Kind::Str { .. }) => Read::Enum(e.symbols.clone()),
            Avro::Bytes if matches!(k, Kind::Bin { .. }) => Read::Bytes,
            Avro::Fixed(f) if matches!(k, Kind::Bin { .. }) => Read::Fixed(f.size),
            Avro::TimestampMillis | Avro::LocalTimestampMillis
                if matches!(k, Kind::Timestamp(_)) =>
            {
                Read::Long
            }
            Avro::TimestampMicros | Avro::LocalTimestampMicros
                if matches!(k, Kind::Timestamp(_)) =>
            {
                Read::TsMicros
            }
            Avro::Date if matches!(k, Kind::Date(_)) => Read::Int,
            Avro::TimeMillis if matches!(k, Kind::Time(_)) => Read::Int,
            Avro::Decimal(d) if matches!(k, Kind::Decimal { .. }) => Read::Decimal {
                fixed: match &d.inner {
                    InnerDecimalSchema::Bytes => None,
                    InnerDecimalSchema::Fixed(f) => Some(f.size),
                },
                scale: i8::try_from(d.scale).map_err(|_| mismatch())?,
            },
            Avro::Array(a) => match k {
                Kind::List { item, .. } => {
                    let z = self.zero_size(&a.items, 0);
                    Read::Array(Box::new(self.read(&a.items, item, path)?), z)
                }
                _ => return Err(mismatch()),
            },
            Avro::Map(m) => match k {
                Kind::Map { values, .. } => {
                    let z = self.zero_size(&m.types, 0);
                    Read::Map(Box::new(self.read(&m.types, values, path)?), z)
                }
                _ => return Err(mismatch()),
            },
            Avro::Record(r) => match k {
                Kind::Struct(row) => Read::Record(self.record(&r.fields, row, Some(path))?),
                _ => return Err(mismatch()),
            },
            _ => return Err(mismatch()),
        })
    }
}

impl AvroDecoder {
    /// A decoder for datums written with `writer` into rows of `schema`.
    ///
    /// # Errors
    /// A column of a type outside the SQL type mapping, or a writer field that cannot be read
    /// as its column's type (named in the error).
    pub fn new(schema: SchemaRef, writer: &Avro) -> Result<Self, FormatError> {
        let cols = Columns::new(&schema, Allowed::All, "AVRO")?;
        let mut names = HashMap::new();
        collect_names(writer, &mut names);
        let mut c = Compiler {
            names,
            skips: Vec::new(),
            skip_named: HashMap::new(),
        };
        let w = c.resolve(writer, "")?;
        let top = match w {
            Avro::Record(r) => Top::Record(c.record(&r.fields, &cols.row, None)?),
            Avro::Union(u)
                if u.variants().len() == 2
                    && u.variants().iter().any(|v| matches!(v, Avro::Null))
                    && u.variants()
                        .iter()
                        .any(|v| matches!(c.resolve(v, ""), Ok(Avro::Record(_)))) =>
            {
                let vs = u.variants();
                let null = vs.iter().position(|v| matches!(v, Avro::Null)).unwrap_or(0);
                let value = 1 - null;
                let Ok(Avro::Record(r)) = c.resolve(&vs[value], "") else {
                    return Err(FormatError::Schema("unreachable writer union".into()));
                };
                Top::NullableRecord {
                    null: null as i64,
                    value: value as i64,
                    fields: c.record(&r.fields, &cols.row, None)?,
                }
            }
            _ if cols.row.cols.len() == 1 => {
                let col = &cols.row.cols[0];
                Top::Single(c.read(w, col, &col.name)?)
            }
            _ => {
                return Err(FormatError::Schema(format!(
                    "the writer schema is a {}, not a record, and there are {} columns",
                    avro_name(w),
                    cols.row.cols.len()
                )));
            }
        };
        Ok(AvroDecoder {
            cols,
            top,
            skips: c.skips,
        })
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.cols.schema.clone()
    }
}

impl RowDecoder for AvroDecoder {
    fn append(&mut self, value: &[u8]) -> Result<(), RowError> {
        let mut rd = Rd {
            b: value,
            i: 0,
            skips: &self.skips,
        };
        let rows = self.cols.rows;
        let r = match &self.top {
            Top::Record(fields) => rd.record(fields, &mut self.cols.row, rows),
            Top::NullableRecord {
                null,
                value,
                fields,
            } => {
                let ix = rd.long()?;
                if ix == *null {
                    Ok(())
                } else if ix == *value {
                    rd.record(fields, &mut self.cols.row, rows)
                } else {
                    Err(rd.err(&format!("union branch {ix} out of range")))
                }
            }
            Top::Single(plan) => {
                let col = &mut self.cols.row.cols[0];
                rd.read(plan, col).map_err(|e| e.within(&col.name))
            }
        }
        .and_then(|()| {
            if rd.i == rd.b.len() {
                Ok(())
            } else {
                Err(RowError::new(format!(
                    "invalid Avro: {} bytes after the end of the datum",
                    rd.b.len() - rd.i
                )))
            }
        });
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

struct Rd<'a> {
    b: &'a [u8],
    i: usize,
    skips: &'a [Skip],
}

impl<'a> Rd<'a> {
    #[cold]
    fn err(&self, what: &str) -> RowError {
        RowError::new(format!("invalid Avro at byte {}: {what}", self.i))
    }

    #[inline]
    fn long(&mut self) -> Result<i64, RowError> {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("truncated"));
            };
            self.i += 1;
            if shift == 63 && c > 1 {
                return Err(self.err("varint longer than 64 bits"));
            }
            v |= u64::from(c & 0x7f) << shift;
            if c & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    #[inline]
    fn int(&mut self) -> Result<i32, RowError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| self.err(&format!("int {v} out of range")))
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], RowError> {
        let left = self.b.len() - self.i;
        if n > left {
            return Err(self.err(&format!("length {n} larger than the {left} bytes left")));
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8], RowError> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| self.err(&format!("negative length {n}")))?;
        self.take(n)
    }

    /// The item count of the next block (0 at the end), its byte size skipped past.
    #[inline]
    fn block(&mut self, zero_size: bool) -> Result<usize, RowError> {
        let mut n = self.long()?;
        if n < 0 {
            n = n
                .checked_neg()
                .ok_or_else(|| self.err("block count out of range"))?;
            let size = self.long()?;
            if size < 0 {
                return Err(self.err(&format!("negative block size {size}")));
            }
        }
        let left = (self.b.len() - self.i) as i64;
        let limit = if zero_size { MAX_ZERO_SIZE_ITEMS } else { left };
        if n > limit {
            return Err(self.err(&format!(
                "block of {n} items larger than the {left} bytes left"
            )));
        }
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn skip(&mut self, k: usize, depth: usize) -> Result<(), RowError> {
        if depth > MAX_SKIP_DEPTH {
            return Err(self.err("nested deeper than 100 levels"));
        }
        match &self.skips[k] {
            Skip::Null => {}
            Skip::Bool => {
                self.take(1)?;
            }
            Skip::Int | Skip::Long => {
                self.long()?;
            }
            Skip::Float => {
                self.take(4)?;
            }
            Skip::Double => {
                self.take(8)?;
            }
            Skip::Bytes => {
                self.bytes()?;
            }
            Skip::Fixed(n) => {
                self.take(*n)?;
            }
            Skip::Array(item, z) => {
                let (item, z) = (*item, *z);
                loop {
                    let n = self.block(z)?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        self.skip(item, depth + 1)?;
                    }
                }
            }
            Skip::Map(v, z) => {
                let (v, z) = (*v, *z);
                loop {
                    let n = self.block(z)?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        self.bytes()?;
                        self.skip(v, depth + 1)?;
                    }
                }
            }
            Skip::Union(vs) => {
                let ix = self.long()?;
                let v = usize::try_from(ix)
                    .ok()
                    .and_then(|i| vs.get(i).copied())
                    .ok_or_else(|| self.err(&format!("union branch {ix} out of range")))?;
                self.skip(v, depth + 1)?;
            }
            Skip::Record(fs) => {
                for &f in fs {
                    self.skip(f, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, fields: &[FieldPlan], row: &mut Row, len: usize) -> Result<(), RowError> {
        for f in fields {
            match f {
                FieldPlan::Col(ci, plan) => {
                    let col = &mut row.cols[*ci];
                    self.read(plan, col).map_err(|e| e.within(&col.name))?;
                }
                FieldPlan::Skip(k) => self.skip(*k, 0)?,
            }
        }
        let _ = len;
        Ok(())
    }

    fn read(&mut self, plan: &Read, col: &mut Col) -> Result<(), RowError> {
        match plan {
            Read::Null => col.push_null(),
            Read::Union { null, value, inner } => {
                let ix = self.long()?;
                if Some(ix) == *null {
                    col.push_null();
                } else if ix == *value {
                    return self.read(inner, col);
                } else {
                    return Err(self.err(&format!("union branch {ix} out of range")));
                }
            }
            Read::Bool => {
                let b = self.take(1)?[0];
                let v = match b {
                    0 => false,
                    1 => true,
                    _ => return Err(self.err(&format!("boolean byte {b}"))),
                };
                if let Kind::Bool(bits) = &mut col.kind {
                    bits.append(v);
                }
                col.valid();
            }
            Read::Int => {
                let v = self.int()?;
                match &mut col.kind {
                    Kind::Int(x) | Kind::Date(x) | Kind::Time(x) => x.push(v),
                    Kind::BigInt(x) => x.push(i64::from(v)),
                    Kind::Double(x) => x.push(f64::from(v)),
                    _ => return Err(internal()),
                }
                col.valid();
            }
            Read::Long => {
                let v = self.long()?;
                match &mut col.kind {
                    Kind::BigInt(x) | Kind::Timestamp(x) => x.push(v),
                    Kind::Double(x) => x.push(v as f64),
                    _ => return Err(internal()),
                }
                col.valid();
            }
            Read::TsMicros => {
                let v = self.long()?;
                match &mut col.kind {
                    Kind::Timestamp(x) => x.push(v.div_euclid(1000)),
                    _ => return Err(internal()),
                }
                col.valid();
            }
            Read::Float => {
                let b = self.take(4)?;
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                match &mut col.kind {
                    Kind::Double(x) => x.push(f64::from(v)),
                    _ => return Err(internal()),
                }
                col.valid();
            }
            Read::Double => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                match &mut col.kind {
                    Kind::Double(x) => x.push(f64::from_le_bytes(a)),
                    _ => return Err(internal()),
                }
                col.valid();
            }
            Read::Bytes | Read::Fixed(_) => {
                let b = match plan {
                    Read::Fixed(n) => self.take(*n)?,
                    _ => self.bytes()?,
                };
                match &mut col.kind {
                    Kind::Str { data, .. } => {
                        if let Err(e) = std::str::from_utf8(b) {
                            return Err(RowError::new(format!(
                                "invalid UTF-8 at byte {} of the string",
                                e.valid_up_to()
                            )));
                        }
                        data.extend_from_slice(b);
                    }
                    Kind::Bin { data, .. } => data.extend_from_slice(b),
                    _ => return Err(internal()),
                }
                return col.close_bytes();
            }
            Read::Enum(symbols) => {
                let ix = self.int()?;
                let sym = usize::try_from(ix)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| self.err(&format!("enum index {ix} out of range")))?;
                match &mut col.kind {
                    Kind::Str { data, .. } => data.extend_from_slice(sym.as_bytes()),
                    _ => return Err(internal()),
                }
                return col.close_bytes();
            }
            Read::Decimal { fixed, scale } => {
                let b = match fixed {
                    Some(n) => self.take(*n)?,
                    None => self.bytes()?,
                };
                let Kind::Decimal {
                    vals,
                    precision,
                    scale: to,
                } = &mut col.kind
                else {
                    return Err(internal());
                };
                let v = decimal_of(b, *scale, *precision, *to).ok_or_else(|| {
                    RowError::new(format!(
                        "cannot convert the decimal to DECIMAL({precision}, {to}) without rounding or overflow"
                    ))
                })?;
                vals.push(v);
                col.valid();
            }
            Read::Array(item_plan, z) => {
                let Kind::List { item, .. } = &mut col.kind else {
                    return Err(internal());
                };
                loop {
                    let n = self.block(*z)?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        self.read(item_plan, item)?;
                    }
                }
                return col.close_nested();
            }
            Read::Map(value_plan, z) => {
                let Kind::Map { keys, values, .. } = &mut col.kind else {
                    return Err(internal());
                };
                loop {
                    let n = self.block(*z)?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let k = self.bytes()?;
                        if std::str::from_utf8(k).is_err() {
                            return Err(self.err("map key is not UTF-8"));
                        }
                        if let Kind::Str { data, .. } = &mut keys.kind {
                            data.extend_from_slice(k);
                        }
                        keys.close_bytes()?;
                        self.read(value_plan, values)?;
                    }
                }
                return col.close_nested();
            }
            Read::Record(fields) => {
                let len = col.len();
                let Kind::Struct(row) = &mut col.kind else {
                    return Err(internal());
                };
                self.record(fields, row, len)?;
                row.fill_missing(len);
                col.valid();
            }
        }
        Ok(())
    }
}

#[cold]
fn internal() -> RowError {
    RowError::new("internal: read plan does not match the column")
}

/// A two's-complement big-endian decimal at `from` scale, rescaled to `to` and checked
/// against `precision`.
fn decimal_of(b: &[u8], from: i8, precision: u8, to: i8) -> Option<i128> {
    let neg = b.first().is_some_and(|&c| c & 0x80 != 0);
    let (pad, rest) = if b.len() > 16 {
        b.split_at(b.len() - 16)
    } else {
        (&b[..0], b)
    };
    let fill = if neg { 0xff } else { 0 };
    if pad.iter().any(|&c| c != fill) {
        return None;
    }
    let mut a = [fill; 16];
    a[16 - rest.len()..].copy_from_slice(rest);
    let v = i128::from_be_bytes(a);
    if !pad.is_empty() && (v < 0) != neg {
        return None;
    }
    let v = if to >= from {
        v.checked_mul(pow10(u32::try_from(to - from).ok()?)?)?
    } else {
        let p = pow10(u32::try_from(from - to).ok()?)?;
        if v % p != 0 {
            return None;
        }
        v / p
    };
    (v.unsigned_abs() < pow10(u32::from(precision))?.unsigned_abs()).then_some(v)
}

/// The columns ksqlDB infers from a registry schema: the top-level record's fields (a
/// nullable union `["null", T]` is `T`), names upper-cased when `upper_case` (nested struct
/// field names too).
///
/// # Errors
/// The writer is not a record, or a field's type has no SQL type (other unions, `time-micros`,
/// recursive records, decimals of precision > 38).
pub fn arrow_schema_from_avro(writer: &Avro, upper_case: bool) -> Result<Schema, FormatError> {
    let mut names = HashMap::new();
    collect_names(writer, &mut names);
    let mut stack = Vec::new();
    let w = match writer {
        Avro::Ref { name } => names.get(&name.fullname(None)).copied().unwrap_or(writer),
        _ => writer,
    };
    let Avro::Record(r) = w else {
        return Err(FormatError::Schema(format!(
            "the writer schema is a {}, not a record",
            avro_name(w)
        )));
    };
    stack.push(r.name.fullname(None));
    let fields = record_fields(&r.fields, None, upper_case, &names, &mut stack)?;
    Ok(Schema::new(fields))
}

fn record_fields(
    fields: &[apache_avro::schema::RecordField],
    parent: Option<&str>,
    upper: bool,
    names: &HashMap<String, &Avro>,
    stack: &mut Vec<String>,
) -> Result<Fields, FormatError> {
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let name = if upper {
            f.name.to_uppercase()
        } else {
            f.name.clone()
        };
        let path = match parent {
            Some(p) => format!("{p}->{name}"),
            None => name.clone(),
        };
        let dt = data_type_of(&f.schema, &path, upper, names, stack)?;
        out.push(Field::new(name, dt, true));
    }
    Ok(Fields::from(out))
}

fn data_type_of(
    s: &Avro,
    path: &str,
    upper: bool,
    names: &HashMap<String, &Avro>,
    stack: &mut Vec<String>,
) -> Result<DataType, FormatError> {
    let no = || {
        FormatError::Schema(format!(
            "column {path}: no SQL type for the Avro type {}",
            avro_name(s)
        ))
    };
    Ok(match s {
        Avro::Ref { name } => {
            let full = name.fullname(None);
            if stack.contains(&full) {
                return Err(FormatError::Schema(format!(
                    "column {path}: recursive type {full} has no SQL type"
                )));
            }
            let t = names.get(&full).copied().ok_or_else(no)?;
            return data_type_of(t, path, upper, names, stack);
        }
        Avro::Boolean => DataType::Boolean,
        Avro::Int => DataType::Int32,
        Avro::Long => DataType::Int64,
        Avro::Float | Avro::Double => DataType::Float64,
        Avro::String | Avro::Enum(_) | Avro::Uuid(UuidSchema::String) => DataType::Utf8,
        Avro::Bytes | Avro::Fixed(_) => DataType::Binary,
        Avro::TimestampMillis
        | Avro::TimestampMicros
        | Avro::LocalTimestampMillis
        | Avro::LocalTimestampMicros => DataType::Timestamp(TimeUnit::Millisecond, None),
        Avro::Date => DataType::Date32,
        Avro::TimeMillis => DataType::Time32(TimeUnit::Millisecond),
        Avro::Decimal(d) => {
            let p = u8::try_from(d.precision)
                .ok()
                .filter(|p| (1..=38).contains(p));
            let sc = i8::try_from(d.scale).ok();
            match (p, sc) {
                (Some(p), Some(sc)) if sc >= 0 && sc as u8 <= p => DataType::Decimal128(p, sc),
                _ => return Err(no()),
            }
        }
        Avro::Array(a) => DataType::List(Arc::new(Field::new(
            "item",
            data_type_of(&a.items, path, upper, names, stack)?,
            true,
        ))),
        Avro::Map(m) => {
            let v = data_type_of(&m.types, path, upper, names, stack)?;
            DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new("value", v, true),
                    ])),
                    false,
                )),
                false,
            )
        }
        Avro::Record(r) => {
            let full = r.name.fullname(None);
            if stack.contains(&full) {
                return Err(FormatError::Schema(format!(
                    "column {path}: recursive type {full} has no SQL type"
                )));
            }
            stack.push(full);
            let fs = record_fields(&r.fields, Some(path), upper, names, stack)?;
            stack.pop();
            DataType::Struct(fs)
        }
        Avro::Union(u) => {
            let others: Vec<&Avro> = u
                .variants()
                .iter()
                .filter(|v| !matches!(v, Avro::Null))
                .collect();
            match others.as_slice() {
                [one] if u.variants().len() <= 2 => {
                    return data_type_of(one, path, upper, names, stack);
                }
                _ => return Err(no()),
            }
        }
        _ => return Err(no()),
    })
}
