//! The JSON encoder: one object per row (or the bare value of a single column), written into
//! one buffer with hand-written number, string and base64 formatting.

use crate::RowEncoder;
use crate::error::FormatError;
use crate::json_dec::JsonOptions;
use crate::num::{write_decimal, write_f64, write_int};
use crate::view::{View, range};
use arrow_array::RecordBatch;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Encodes rows as JSON (ksqlDB's `JSON` format).
///
/// Keys are the Arrow field names as they are; nulls are written as `null`. Integers are
/// plain; doubles the shortest text that reads back to the same value, with `.0` when
/// integral (`1.0`), and `null` for NaN and infinities; `DECIMAL` a number with exactly its
/// scale's decimals; `TIMESTAMP` epoch milliseconds, `DATE` epoch days, `TIME` milliseconds of
/// the day; `BYTES` a base64 string; strings escaped (`"`, `\`, control characters as
/// `\u00XX`; other characters as UTF-8); lists arrays, maps and structs objects.
pub struct JsonEncoder {
    unwrapped: bool,
    keys: Vec<Vec<u8>>,
}

impl JsonEncoder {
    /// An encoder; with `wrap_single_value` false, a batch of one column is written as bare
    /// values.
    pub fn new(options: JsonOptions) -> Self {
        JsonEncoder {
            unwrapped: !options.wrap_single_value,
            keys: Vec::new(),
        }
    }
}

impl Default for JsonEncoder {
    fn default() -> Self {
        JsonEncoder::new(JsonOptions::default())
    }
}

impl RowEncoder for JsonEncoder {
    fn encode(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<(), FormatError> {
        let schema = batch.schema();
        let mut views = Vec::with_capacity(batch.num_columns());
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            views.push(View::new(c.as_ref(), f.name(), "JSON")?);
        }
        let n = batch.num_rows();
        ends.reserve(n);
        if self.unwrapped && views.len() == 1 {
            for i in 0..n {
                write_value(out, &views[0], i);
                ends.push(out.len());
            }
            return Ok(());
        }
        self.keys.clear();
        for (j, f) in schema.fields().iter().enumerate() {
            let mut k = Vec::with_capacity(f.name().len() + 4);
            k.push(if j == 0 { b'{' } else { b',' });
            write_str(&mut k, f.name().as_bytes());
            k.push(b':');
            self.keys.push(k);
        }
        for i in 0..n {
            if views.is_empty() {
                out.push(b'{');
            }
            for (k, v) in self.keys.iter().zip(&views) {
                out.extend_from_slice(k);
                write_value(out, v, i);
            }
            out.push(b'}');
            ends.push(out.len());
        }
        Ok(())
    }
}

/// Writes the value of row `i` of `v`.
fn write_value(out: &mut Vec<u8>, v: &View<'_>, i: usize) {
    if v.is_null(i) {
        out.extend_from_slice(b"null");
        return;
    }
    match v {
        View::Null => out.extend_from_slice(b"null"),
        View::Bool(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
        View::U64(a) => write_int(out, a.value(i)),
        View::F32(_) | View::F64(_) => {
            if !write_f64(out, v.double(i).unwrap_or(f64::NAN)) {
                out.extend_from_slice(b"null");
            }
        }
        View::Decimal(a, s) => write_decimal(out, a.value(i), *s),
        View::Utf8(_) | View::LargeUtf8(_) | View::Utf8Views(_) => {
            write_str(out, v.bytes(i).unwrap_or_default());
        }
        View::Binary(_) | View::LargeBinary(_) => {
            let b = v.bytes(i).unwrap_or_default();
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
            let n = STANDARD.encode_slice(b, &mut out[start..]).unwrap_or(0);
            out.truncate(start + n);
            out.push(b'"');
        }
        View::List { offsets, item, .. } => {
            out.push(b'[');
            for (k, j) in range(offsets, i).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_value(out, item, j);
            }
            out.push(b']');
        }
        View::Map {
            offsets,
            keys,
            values,
            ..
        } => {
            out.push(b'{');
            for (k, j) in range(offsets, i).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_str(out, keys.bytes(j).unwrap_or_default());
                out.push(b':');
                write_value(out, values, j);
            }
            out.push(b'}');
        }
        View::Struct { fields, .. } => {
            out.push(b'{');
            for (k, (name, f)) in fields.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_str(out, name.as_bytes());
                out.push(b':');
                write_value(out, f, i);
            }
            out.push(b'}');
        }
        _ => match v.int(i) {
            Some(x) => write_int(out, x),
            None => out.extend_from_slice(b"null"),
        },
    }
}

/// Which bytes need an escape in a JSON string.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Writes `s` (UTF-8) as a JSON string.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(c)] {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}
