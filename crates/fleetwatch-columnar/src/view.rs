//! Typed views of a batch's arrays for the encoders: each column is downcast once per batch
//! (not once per value) into a [`View`], which the encoders then walk row by row.

use crate::error::FormatError;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, BinaryArray, BooleanArray, LargeBinaryArray, LargeStringArray, PrimitiveArray,
    StringArray, StringViewArray,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};

/// What a value of a view is, in SQL terms (which Avro / text form it gets).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Sql {
    Boolean,
    Int,
    BigInt,
    Double,
    Decimal(u8, i8),
    String,
    Bytes,
    Timestamp,
    Date,
    Time,
    Array,
    Map,
    Struct,
    Null,
}

/// The SQL type a column of `dt` is written as, or `None` when no format can write it.
pub(crate) fn sql_of(dt: &DataType) -> Option<Sql> {
    Some(match dt {
        DataType::Null => Sql::Null,
        DataType::Boolean => Sql::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            Sql::Int
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Sql::BigInt,
        DataType::Float32 | DataType::Float64 => Sql::Double,
        DataType::Decimal128(p, s) if *s >= 0 => Sql::Decimal(*p, *s),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Sql::String,
        DataType::Binary | DataType::LargeBinary => Sql::Bytes,
        DataType::Timestamp(_, _) => Sql::Timestamp,
        DataType::Date32 => Sql::Date,
        DataType::Time32(_) | DataType::Time64(_) => Sql::Time,
        DataType::List(_) => Sql::Array,
        DataType::Map(_, _) => Sql::Map,
        DataType::Struct(_) => Sql::Struct,
        _ => return None,
    })
}

/// One array, downcast.
pub(crate) enum View<'a> {
    Null,
    Bool(&'a BooleanArray),
    I8(&'a PrimitiveArray<Int8Type>),
    I16(&'a PrimitiveArray<Int16Type>),
    I32(&'a PrimitiveArray<Int32Type>),
    I64(&'a PrimitiveArray<Int64Type>),
    U8(&'a PrimitiveArray<UInt8Type>),
    U16(&'a PrimitiveArray<UInt16Type>),
    U32(&'a PrimitiveArray<UInt32Type>),
    U64(&'a PrimitiveArray<UInt64Type>),
    F32(&'a PrimitiveArray<Float32Type>),
    F64(&'a PrimitiveArray<Float64Type>),
    Decimal(&'a PrimitiveArray<Decimal128Type>, i8),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8Views(&'a StringViewArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    /// Epoch values and what to divide (negative: multiply) them by for milliseconds.
    Ts(TsArr<'a>),
    Date(&'a PrimitiveArray<Date32Type>),
    Time(TimeArr<'a>),
    List {
        nulls: Option<&'a NullBuffer>,
        offsets: &'a [i32],
        item: Box<View<'a>>,
    },
    Map {
        nulls: Option<&'a NullBuffer>,
        offsets: &'a [i32],
        keys: Box<View<'a>>,
        values: Box<View<'a>>,
    },
    Struct {
        nulls: Option<&'a NullBuffer>,
        fields: Vec<(&'a str, View<'a>)>,
    },
}

/// A timestamp array of any unit.
pub(crate) enum TsArr<'a> {
    S(&'a PrimitiveArray<TimestampSecondType>),
    Ms(&'a PrimitiveArray<TimestampMillisecondType>),
    Us(&'a PrimitiveArray<TimestampMicrosecondType>),
    Ns(&'a PrimitiveArray<TimestampNanosecondType>),
}

/// A time array of any unit.
pub(crate) enum TimeArr<'a> {
    S(&'a PrimitiveArray<Time32SecondType>),
    Ms(&'a PrimitiveArray<Time32MillisecondType>),
    Us(&'a PrimitiveArray<Time64MicrosecondType>),
    Ns(&'a PrimitiveArray<Time64NanosecondType>),
}

impl<'a> View<'a> {
    /// Downcasts `a`; `path` names the column in the error for an unsupported type.
    pub(crate) fn new(
        a: &'a dyn Array,
        path: &str,
        format: &'static str,
    ) -> Result<View<'a>, FormatError> {
        let unsupported = || FormatError::UnsupportedType {
            column: path.to_owned(),
            data_type: a.data_type().to_string(),
            format,
        };
        Ok(match a.data_type() {
            DataType::Null => View::Null,
            DataType::Boolean => View::Bool(a.as_boolean()),
            DataType::Int8 => View::I8(a.as_primitive()),
            DataType::Int16 => View::I16(a.as_primitive()),
            DataType::Int32 => View::I32(a.as_primitive()),
            DataType::Int64 => View::I64(a.as_primitive()),
            DataType::UInt8 => View::U8(a.as_primitive()),
            DataType::UInt16 => View::U16(a.as_primitive()),
            DataType::UInt32 => View::U32(a.as_primitive()),
            DataType::UInt64 => View::U64(a.as_primitive()),
            DataType::Float32 => View::F32(a.as_primitive()),
            DataType::Float64 => View::F64(a.as_primitive()),
            DataType::Decimal128(_, s) if *s >= 0 => View::Decimal(a.as_primitive(), *s),
            DataType::Utf8 => View::Utf8(a.as_string()),
            DataType::LargeUtf8 => View::LargeUtf8(a.as_string()),
            DataType::Utf8View => View::Utf8Views(a.as_string_view()),
            DataType::Binary => View::Binary(a.as_binary()),
            DataType::LargeBinary => View::LargeBinary(a.as_binary()),
            DataType::Timestamp(u, _) => View::Ts(match u {
                TimeUnit::Second => TsArr::S(a.as_primitive()),
                TimeUnit::Millisecond => TsArr::Ms(a.as_primitive()),
                TimeUnit::Microsecond => TsArr::Us(a.as_primitive()),
                TimeUnit::Nanosecond => TsArr::Ns(a.as_primitive()),
            }),
            DataType::Date32 => View::Date(a.as_primitive()),
            DataType::Time32(TimeUnit::Second) => View::Time(TimeArr::S(a.as_primitive())),
            DataType::Time32(TimeUnit::Millisecond) => View::Time(TimeArr::Ms(a.as_primitive())),
            DataType::Time64(TimeUnit::Microsecond) => View::Time(TimeArr::Us(a.as_primitive())),
            DataType::Time64(TimeUnit::Nanosecond) => View::Time(TimeArr::Ns(a.as_primitive())),
            DataType::List(_) => {
                let l = a.as_list::<i32>();
                View::List {
                    nulls: l.nulls(),
                    offsets: l.value_offsets(),
                    item: Box::new(View::new(
                        l.values().as_ref(),
                        &format!("{path}[]"),
                        format,
                    )?),
                }
            }
            DataType::Map(_, _) => {
                let m = a.as_map();
                let p = format!("{path}{{}}");
                if !matches!(
                    m.key_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) {
                    return Err(unsupported());
                }
                View::Map {
                    nulls: m.nulls(),
                    offsets: m.value_offsets(),
                    keys: Box::new(View::new(m.keys().as_ref(), &p, format)?),
                    values: Box::new(View::new(m.values().as_ref(), &p, format)?),
                }
            }
            DataType::Struct(fields) => {
                let s = a.as_struct();
                let mut out = Vec::with_capacity(fields.len());
                for (f, c) in fields.iter().zip(s.columns()) {
                    let p = format!("{path}->{}", f.name());
                    out.push((f.name().as_str(), View::new(c.as_ref(), &p, format)?));
                }
                View::Struct {
                    nulls: s.nulls(),
                    fields: out,
                }
            }
            _ => return Err(unsupported()),
        })
    }

    /// Whether row `i` is null.
    #[inline]
    pub(crate) fn is_null(&self, i: usize) -> bool {
        match self {
            View::Null => true,
            View::Bool(a) => a.is_null(i),
            View::I8(a) => a.is_null(i),
            View::I16(a) => a.is_null(i),
            View::I32(a) => a.is_null(i),
            View::I64(a) => a.is_null(i),
            View::U8(a) => a.is_null(i),
            View::U16(a) => a.is_null(i),
            View::U32(a) => a.is_null(i),
            View::U64(a) => a.is_null(i),
            View::F32(a) => a.is_null(i),
            View::F64(a) => a.is_null(i),
            View::Decimal(a, _) => a.is_null(i),
            View::Utf8(a) => a.is_null(i),
            View::LargeUtf8(a) => a.is_null(i),
            View::Utf8Views(a) => a.is_null(i),
            View::Binary(a) => a.is_null(i),
            View::LargeBinary(a) => a.is_null(i),
            View::Ts(t) => match t {
                TsArr::S(a) => a.is_null(i),
                TsArr::Ms(a) => a.is_null(i),
                TsArr::Us(a) => a.is_null(i),
                TsArr::Ns(a) => a.is_null(i),
            },
            View::Date(a) => a.is_null(i),
            View::Time(t) => match t {
                TimeArr::S(a) => a.is_null(i),
                TimeArr::Ms(a) => a.is_null(i),
                TimeArr::Us(a) => a.is_null(i),
                TimeArr::Ns(a) => a.is_null(i),
            },
            View::List { nulls, .. } | View::Map { nulls, .. } | View::Struct { nulls, .. } => {
                nulls.is_some_and(|n| n.is_null(i))
            }
        }
    }

    /// The value of an integer-like view (INT, BIGINT, DATE, TIME, TIMESTAMP) at `i` as i64:
    /// times and timestamps in milliseconds. `None` for other views or a u64 past i64.
    #[inline]
    pub(crate) fn int(&self, i: usize) -> Option<i64> {
        Some(match self {
            View::I8(a) => i64::from(a.value(i)),
            View::I16(a) => i64::from(a.value(i)),
            View::I32(a) => i64::from(a.value(i)),
            View::I64(a) => a.value(i),
            View::U8(a) => i64::from(a.value(i)),
            View::U16(a) => i64::from(a.value(i)),
            View::U32(a) => i64::from(a.value(i)),
            View::U64(a) => i64::try_from(a.value(i)).ok()?,
            View::Date(a) => i64::from(a.value(i)),
            View::Ts(t) => match t {
                TsArr::S(a) => a.value(i).saturating_mul(1000),
                TsArr::Ms(a) => a.value(i),
                TsArr::Us(a) => a.value(i).div_euclid(1000),
                TsArr::Ns(a) => a.value(i).div_euclid(1_000_000),
            },
            View::Time(t) => match t {
                TimeArr::S(a) => i64::from(a.value(i)) * 1000,
                TimeArr::Ms(a) => i64::from(a.value(i)),
                TimeArr::Us(a) => a.value(i).div_euclid(1000),
                TimeArr::Ns(a) => a.value(i).div_euclid(1_000_000),
            },
            _ => return None,
        })
    }

    /// The value of a DOUBLE view at `i`.
    #[inline]
    pub(crate) fn double(&self, i: usize) -> Option<f64> {
        match self {
            View::F64(a) => Some(a.value(i)),
            View::F32(a) => Some(f64::from(a.value(i))),
            _ => None,
        }
    }

    /// The bytes of a STRING or BYTES view at `i`.
    #[inline]
    pub(crate) fn bytes(&self, i: usize) -> Option<&'a [u8]> {
        match self {
            View::Utf8(a) => Some(a.value(i).as_bytes()),
            View::LargeUtf8(a) => Some(a.value(i).as_bytes()),
            View::Utf8Views(a) => Some(a.value(i).as_bytes()),
            View::Binary(a) => Some(a.value(i)),
            View::LargeBinary(a) => Some(a.value(i)),
            _ => None,
        }
    }
}

/// The item range of a list or map row.
#[inline]
pub(crate) fn range(offsets: &[i32], i: usize) -> std::ops::Range<usize> {
    let s = usize::try_from(offsets[i]).unwrap_or(0);
    let e = usize::try_from(offsets[i + 1]).unwrap_or(0);
    s..e
}
