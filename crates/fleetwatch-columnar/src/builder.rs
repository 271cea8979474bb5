//! Column builders that can be cut back: the decoders' shared storage.
//!
//! Arrow's own builders cannot undo an append, and rows must be atomic, so each column keeps
//! plain vectors (values, offsets, a validity bitmap) that [`Col::truncate`] cuts back to a row
//! count — recursively for lists, maps and structs. [`Col::finish`] moves the vectors into Arrow
//! buffers without copying and leaves the column empty.

use crate::error::{FormatError, RowError};
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType,
    TimestampMillisecondType,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, ListArray, MapArray, PrimitiveArray, RecordBatch,
    RecordBatchOptions, StringArray, StructArray,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// What a column holds, with its storage.
pub(crate) enum Kind {
    Bool(BooleanBufferBuilder),
    Int(Vec<i32>),
    BigInt(Vec<i64>),
    Double(Vec<f64>),
    Decimal {
        vals: Vec<i128>,
        precision: u8,
        scale: i8,
    },
    Str {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    Bin {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    Timestamp(Vec<i64>),
    Date(Vec<i32>),
    Time(Vec<i32>),
    List {
        offsets: Vec<i32>,
        item: Box<Col>,
        field: FieldRef,
    },
    Map {
        offsets: Vec<i32>,
        keys: Box<Col>,
        values: Box<Col>,
        entries: FieldRef,
    },
    Struct(Row),
}

/// One column: its name, validity bitmap and storage.
pub(crate) struct Col {
    pub(crate) name: String,
    pub(crate) valid: BooleanBufferBuilder,
    pub(crate) kind: Kind,
}

/// The children of a struct (or the columns of a row), with the name table used to match
/// field names to them.
pub(crate) struct Row {
    pub(crate) cols: Vec<Col>,
    pub(crate) fields: Fields,
    /// Whether no two names are equal ignoring ASCII case: then a case-insensitive match is
    /// the only match and exact-first lookup needs no second pass.
    pub(crate) ci_unique: bool,
    /// The last object's field names by position, with the column each matched: objects
    /// from one producer repeat their shape, so a field is usually found by one comparison
    /// with the name at its position last time (unknown fields included).
    /// Each with whether its bytes can be matched raw in the input (no quote, backslash or
    /// control byte in it).
    pub(crate) shape: Vec<(Box<[u8]>, Option<usize>, bool)>,
}

/// Positions remembered in [`Row::shape`].
const SHAPE_FIELDS: usize = 64;

impl Row {
    /// The name at position `k` of the last object's shape and the column it matched, when
    /// its bytes can be matched raw in the input (no quote, backslash or control byte).
    #[inline]
    pub(crate) fn shape_at(&self, k: usize) -> Option<(&[u8], Option<usize>)> {
        match self.shape.get(k) {
            Some((n, f, true)) => Some((&n[..], *f)),
            _ => None,
        }
    }

    /// [`Row::lookup`] for the `k`-th field of an object, through the shape of the last one.
    #[inline]
    pub(crate) fn lookup_at(&mut self, k: usize, name: &[u8], hint: usize) -> Option<usize> {
        if let Some((seen, found, _)) = self.shape.get(k)
            && seen[..] == *name
        {
            return *found;
        }
        let found = self.lookup(name, hint);
        let raw = name.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\');
        if k < self.shape.len() {
            self.shape[k] = (name.into(), found, raw);
        } else if k == self.shape.len() && k < SHAPE_FIELDS {
            self.shape.push((name.into(), found, raw));
        }
        found
    }

    /// Index of the column `name` matches: exactly first, then ignoring ASCII case.
    /// `hint` is where to start looking (fields usually come in column order).
    #[inline]
    pub(crate) fn lookup(&self, name: &[u8], hint: usize) -> Option<usize> {
        let n = self.cols.len();
        if self.ci_unique {
            for k in 0..n {
                let i = if hint + k < n { hint + k } else { hint + k - n };
                if self.cols[i].name.as_bytes().eq_ignore_ascii_case(name) {
                    return Some(i);
                }
            }
            return None;
        }
        self.cols
            .iter()
            .position(|c| c.name.as_bytes() == name)
            .or_else(|| {
                self.cols
                    .iter()
                    .position(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
            })
    }

    /// Cuts every column back to `len` rows.
    pub(crate) fn truncate(&mut self, len: usize) {
        for c in &mut self.cols {
            c.truncate(len);
        }
    }

    /// Appends a null to every column shorter than `len + 1` (those the value did not set).
    pub(crate) fn fill_missing(&mut self, len: usize) {
        for c in &mut self.cols {
            if c.len() == len {
                c.push_null();
            }
        }
    }
}

/// The SQL name of a column's type, for messages.
pub(crate) fn sql_name(kind: &Kind) -> String {
    match kind {
        Kind::Bool(_) => "BOOLEAN".into(),
        Kind::Int(_) => "INT".into(),
        Kind::BigInt(_) => "BIGINT".into(),
        Kind::Double(_) => "DOUBLE".into(),
        Kind::Decimal {
            precision, scale, ..
        } => format!("DECIMAL({precision}, {scale})"),
        Kind::Str { .. } => "STRING".into(),
        Kind::Bin { .. } => "BYTES".into(),
        Kind::Timestamp(_) => "TIMESTAMP".into(),
        Kind::Date(_) => "DATE".into(),
        Kind::Time(_) => "TIME".into(),
        Kind::List { .. } => "ARRAY".into(),
        Kind::Map { .. } => "MAP".into(),
        Kind::Struct(_) => "STRUCT".into(),
    }
}

fn offset(len: usize) -> Result<i32, RowError> {
    i32::try_from(len).map_err(|_| RowError::new("batch too large: more than 2 GiB in one column"))
}

impl Col {
    /// Rows in this column.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.valid.len()
    }

    /// Whether this is a scalar (not ARRAY, MAP or STRUCT).
    pub(crate) fn is_scalar(&self) -> bool {
        !matches!(
            self.kind,
            Kind::List { .. } | Kind::Map { .. } | Kind::Struct(_)
        )
    }

    /// Appends a null.
    pub(crate) fn push_null(&mut self) {
        self.valid.append(false);
        match &mut self.kind {
            Kind::Bool(v) => v.append(false),
            Kind::Int(v) | Kind::Date(v) | Kind::Time(v) => v.push(0),
            Kind::BigInt(v) | Kind::Timestamp(v) => v.push(0),
            Kind::Double(v) => v.push(0.0),
            Kind::Decimal { vals, .. } => vals.push(0),
            Kind::Str { offsets, .. }
            | Kind::Bin { offsets, .. }
            | Kind::List { offsets, .. }
            | Kind::Map { offsets, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last);
            }
            Kind::Struct(row) => {
                for c in &mut row.cols {
                    c.push_null();
                }
            }
        }
    }

    /// Cuts the column back to `len` rows (no-op when it is not longer).
    pub(crate) fn truncate(&mut self, len: usize) {
        // Children and data are cut even when the column itself is not longer: a value that
        // failed half-way may have written them before its own row was closed.
        if self.valid.len() > len {
            self.valid.truncate(len);
        }
        match &mut self.kind {
            Kind::Bool(v) => v.truncate(len),
            Kind::Int(v) | Kind::Date(v) | Kind::Time(v) => v.truncate(len),
            Kind::BigInt(v) | Kind::Timestamp(v) => v.truncate(len),
            Kind::Double(v) => v.truncate(len),
            Kind::Decimal { vals, .. } => vals.truncate(len),
            Kind::Str { offsets, data } | Kind::Bin { offsets, data } => {
                offsets.truncate(len + 1);
                data.truncate(end_of(offsets));
            }
            Kind::List { offsets, item, .. } => {
                offsets.truncate(len + 1);
                item.truncate(end_of(offsets));
            }
            Kind::Map {
                offsets,
                keys,
                values,
                ..
            } => {
                offsets.truncate(len + 1);
                let end = end_of(offsets);
                keys.truncate(end);
                values.truncate(end);
            }
            Kind::Struct(row) => row.truncate(len),
        }
    }

    /// Marks the value just written into the storage as a valid row.
    #[inline]
    pub(crate) fn valid(&mut self) {
        self.valid.append(true);
    }

    /// Closes a byte value written at the end of `data` (STRING or BYTES): pushes its end.
    #[inline]
    pub(crate) fn close_bytes(&mut self) -> Result<(), RowError> {
        match &mut self.kind {
            Kind::Str { offsets, data } | Kind::Bin { offsets, data } => {
                offsets.push(offset(data.len())?);
                self.valid.append(true);
                Ok(())
            }
            _ => Err(RowError::new("internal: not a byte column")),
        }
    }

    /// Closes a list or map value whose items were appended to the child: pushes its end.
    #[inline]
    pub(crate) fn close_nested(&mut self) -> Result<(), RowError> {
        match &mut self.kind {
            Kind::List { offsets, item, .. } => {
                offsets.push(offset(item.len())?);
            }
            Kind::Map { offsets, keys, .. } => {
                offsets.push(offset(keys.len())?);
            }
            _ => return Err(RowError::new("internal: not a nested column")),
        }
        self.valid.append(true);
        Ok(())
    }

    /// Moves the rows out as an Arrow array; the column is empty afterwards.
    pub(crate) fn finish(&mut self) -> ArrayRef {
        let bits = NullBuffer::new(self.valid.finish());
        let len = bits.len();
        let nulls = if bits.null_count() > 0 {
            Some(bits)
        } else {
            None
        };
        match &mut self.kind {
            Kind::Bool(v) => {
                let vals = v.finish();
                Arc::new(BooleanArray::new(vals, nulls))
            }
            Kind::Int(v) => prim::<Int32Type>(v, nulls),
            Kind::BigInt(v) => prim::<Int64Type>(v, nulls),
            Kind::Double(v) => prim::<Float64Type>(v, nulls),
            Kind::Timestamp(v) => prim::<TimestampMillisecondType>(v, nulls),
            Kind::Date(v) => prim::<Date32Type>(v, nulls),
            Kind::Time(v) => prim::<Time32MillisecondType>(v, nulls),
            Kind::Decimal {
                vals,
                precision,
                scale,
            } => {
                let cap = vals.capacity();
                let a = PrimitiveArray::<Decimal128Type>::new(
                    ScalarBuffer::from(std::mem::replace(vals, Vec::with_capacity(cap))),
                    nulls,
                )
                .with_data_type(DataType::Decimal128(*precision, *scale));
                Arc::new(a)
            }
            Kind::Str { offsets, data } => {
                let (o, d) = take_bytes(offsets, data);
                Arc::new(StringArray::new(o, d, nulls))
            }
            Kind::Bin { offsets, data } => {
                let (o, d) = take_bytes(offsets, data);
                Arc::new(BinaryArray::new(o, d, nulls))
            }
            Kind::List {
                offsets,
                item,
                field,
            } => {
                let o = take_offsets(offsets);
                Arc::new(ListArray::new(field.clone(), o, item.finish(), nulls))
            }
            Kind::Map {
                offsets,
                keys,
                values,
                entries,
            } => {
                let o = take_offsets(offsets);
                let entry_fields = match entries.data_type() {
                    DataType::Struct(f) => f.clone(),
                    _ => Fields::empty(),
                };
                let st = StructArray::new(entry_fields, vec![keys.finish(), values.finish()], None);
                Arc::new(MapArray::new(entries.clone(), o, st, nulls, false))
            }
            Kind::Struct(row) => {
                if row.cols.is_empty() {
                    Arc::new(StructArray::new_empty_fields(len, nulls))
                } else {
                    let arrays = row.cols.iter_mut().map(Col::finish).collect();
                    Arc::new(StructArray::new(row.fields.clone(), arrays, nulls))
                }
            }
        }
    }
}

fn end_of(offsets: &[i32]) -> usize {
    offsets
        .last()
        .map_or(0, |&o| usize::try_from(o).unwrap_or(0))
}

fn prim<T: arrow_array::ArrowPrimitiveType>(
    v: &mut Vec<T::Native>,
    nulls: Option<NullBuffer>,
) -> ArrayRef {
    let cap = v.capacity();
    let vals = ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(cap)));
    Arc::new(PrimitiveArray::<T>::new(vals, nulls))
}

fn take_offsets(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    let cap = offsets.capacity();
    let mut fresh = Vec::with_capacity(cap);
    fresh.push(0);
    OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, fresh)))
}

fn take_bytes(offsets: &mut Vec<i32>, data: &mut Vec<u8>) -> (OffsetBuffer<i32>, Buffer) {
    let cap = data.capacity();
    let d = Buffer::from_vec(std::mem::replace(data, Vec::with_capacity(cap)));
    (take_offsets(offsets), d)
}

/// Which types a format accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allowed {
    /// Every type of the mapping.
    All,
    /// Scalars only (DELIMITED, KAFKA).
    Scalars,
}

/// Builds the column for `field` (checking its type against the mapping) and the field as
/// the batch will carry it (nullable).
pub(crate) fn build_col(
    field: &Field,
    path: &str,
    allowed: Allowed,
    format: &'static str,
) -> Result<(Col, FieldRef), FormatError> {
    let unsupported = || FormatError::UnsupportedType {
        column: path.to_owned(),
        data_type: field.data_type().to_string(),
        format,
    };
    let nested = |dt: &DataType| {
        if allowed == Allowed::Scalars {
            Err(unsupported())
        } else {
            Ok(dt.clone())
        }
    };
    let (kind, dt) = match field.data_type() {
        DataType::Boolean => (Kind::Bool(BooleanBufferBuilder::new(0)), DataType::Boolean),
        DataType::Int32 => (Kind::Int(Vec::new()), DataType::Int32),
        DataType::Int64 => (Kind::BigInt(Vec::new()), DataType::Int64),
        DataType::Float64 => (Kind::Double(Vec::new()), DataType::Float64),
        DataType::Decimal128(p, s) if *p >= 1 && *p <= 38 && *s >= 0 && (*s as u8) <= *p => (
            Kind::Decimal {
                vals: Vec::new(),
                precision: *p,
                scale: *s,
            },
            DataType::Decimal128(*p, *s),
        ),
        DataType::Utf8 => (
            Kind::Str {
                offsets: vec![0],
                data: Vec::new(),
            },
            DataType::Utf8,
        ),
        DataType::Binary => (
            Kind::Bin {
                offsets: vec![0],
                data: Vec::new(),
            },
            DataType::Binary,
        ),
        DataType::Timestamp(TimeUnit::Millisecond, None) => (
            Kind::Timestamp(Vec::new()),
            DataType::Timestamp(TimeUnit::Millisecond, None),
        ),
        DataType::Date32 => (Kind::Date(Vec::new()), DataType::Date32),
        DataType::Time32(TimeUnit::Millisecond) => (
            Kind::Time(Vec::new()),
            DataType::Time32(TimeUnit::Millisecond),
        ),
        DataType::List(item) => {
            nested(field.data_type())?;
            let (c, f) = build_col(item, &format!("{path}[]"), allowed, format)?;
            let dt = DataType::List(f.clone());
            (
                Kind::List {
                    offsets: vec![0],
                    item: Box::new(c),
                    field: f,
                },
                dt,
            )
        }
        DataType::Map(entries, _) => {
            nested(field.data_type())?;
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(unsupported());
            };
            if kv.len() != 2 || kv[0].data_type() != &DataType::Utf8 {
                return Err(unsupported());
            }
            let (kc, _) = build_col(&kv[0], &format!("{path}{{}}"), allowed, format)?;
            let key = Arc::new(Field::new(kv[0].name(), DataType::Utf8, false));
            let (vc, vf) = build_col(&kv[1], &format!("{path}{{}}"), allowed, format)?;
            let entries = Arc::new(Field::new(
                entries.name(),
                DataType::Struct(Fields::from(vec![key, vf])),
                false,
            ));
            let dt = DataType::Map(entries.clone(), false);
            (
                Kind::Map {
                    offsets: vec![0],
                    keys: Box::new(kc),
                    values: Box::new(vc),
                    entries,
                },
                dt,
            )
        }
        DataType::Struct(children) => {
            nested(field.data_type())?;
            let row = build_row(children, Some(path), allowed, format)?;
            let dt = DataType::Struct(row.fields.clone());
            (Kind::Struct(row), dt)
        }
        _ => return Err(unsupported()),
    };
    let out = Arc::new(Field::new(field.name(), dt, true).with_metadata(field.metadata().clone()));
    Ok((
        Col {
            name: field.name().clone(),
            valid: BooleanBufferBuilder::new(0),
            kind,
        },
        out,
    ))
}

/// Builds the columns of a struct (or of a whole row when `parent` is `None`).
pub(crate) fn build_row(
    fields: &Fields,
    parent: Option<&str>,
    allowed: Allowed,
    format: &'static str,
) -> Result<Row, FormatError> {
    let mut cols = Vec::with_capacity(fields.len());
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let path = match parent {
            Some(p) => format!("{p}->{}", f.name()),
            None => f.name().clone(),
        };
        let (c, nf) = build_col(f, &path, allowed, format)?;
        cols.push(c);
        out.push(nf);
    }
    let mut ci_unique = true;
    for (i, a) in cols.iter().enumerate() {
        for b in &cols[i + 1..] {
            if a.name.eq_ignore_ascii_case(&b.name) {
                ci_unique = false;
            }
        }
    }
    Ok(Row {
        cols,
        fields: Fields::from(out),
        ci_unique,
        shape: Vec::new(),
    })
}

/// The top-level columns of a decoder and the schema of its batches.
pub(crate) struct Columns {
    pub(crate) row: Row,
    pub(crate) schema: SchemaRef,
    pub(crate) rows: usize,
}

impl Columns {
    /// Checks `schema` against the mapping and builds its columns.
    pub(crate) fn new(
        schema: &Schema,
        allowed: Allowed,
        format: &'static str,
    ) -> Result<Self, FormatError> {
        let row = build_row(schema.fields(), None, allowed, format)?;
        let out = Schema::new_with_metadata(row.fields.clone(), schema.metadata().clone());
        Ok(Columns {
            row,
            schema: Arc::new(out),
            rows: 0,
        })
    }

    /// Keeps the row just written (every column one longer) or undoes it.
    #[inline]
    pub(crate) fn commit<T>(&mut self, r: Result<T, RowError>) -> Result<(), RowError> {
        match r {
            Ok(_) => {
                self.row.fill_missing(self.rows);
                self.rows += 1;
                Ok(())
            }
            Err(e) => {
                self.row.truncate(self.rows);
                Err(e)
            }
        }
    }

    /// Appends a row of nulls.
    pub(crate) fn push_null_row(&mut self) {
        for c in &mut self.row.cols {
            c.push_null();
        }
        self.rows += 1;
    }

    /// The rows so far as a batch; empty afterwards.
    pub(crate) fn finish(&mut self) -> RecordBatch {
        let n = self.rows;
        self.rows = 0;
        let arrays: Vec<ArrayRef> = self.row.cols.iter_mut().map(Col::finish).collect();
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        match RecordBatch::try_new_with_options(self.schema.clone(), arrays, &opts) {
            Ok(b) => b,
            // The arrays are built from the schema's own fields, so this cannot happen.
            Err(e) => panic!("fleetwatch-columnar: batch does not match its schema: {e}"),
        }
    }
}
