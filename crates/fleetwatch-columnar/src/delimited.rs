//! ksqlDB's `DELIMITED` format: one line of fields per value, by position, CSV-quoted as in
//! RFC 4180.

use crate::builder::{Allowed, Columns, Kind};
use crate::error::{FormatError, RowError};
use crate::num::{write_decimal, write_f64, write_int};
use crate::text::push_text;
use crate::view::View;
use crate::{RowDecoder, RowEncoder};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Decodes delimited values (ksqlDB's `DELIMITED` format) into a [`RecordBatch`].
///
/// Fields are taken by position; a field may be quoted (`"a,b"`, a quote inside doubled:
/// `"say ""hi"""`); a trailing line end is ignored. An empty field is null (a quoted empty
/// field `""` is the empty string in a `STRING` column). Text converts as a JSON string does
/// (numbers, booleans, exact decimals, base64 bytes, timestamps as epoch milliseconds or
/// ISO-8601, dates, times). Only scalar types.
pub struct DelimitedDecoder {
    cols: Columns,
    delimiter: u8,
    spans: Vec<(usize, usize, bool)>,
    scratch: Vec<u8>,
}

impl DelimitedDecoder {
    /// A decoder for rows of `schema` with fields separated by `delimiter` (usually `b','`).
    ///
    /// # Errors
    /// A column of a non-scalar type or outside the SQL type mapping; a delimiter that is a
    /// quote or a line end.
    pub fn new(schema: SchemaRef, delimiter: u8) -> Result<Self, FormatError> {
        if matches!(delimiter, b'"' | b'\n' | b'\r') {
            return Err(FormatError::Schema(format!(
                "{:?} cannot be the delimiter",
                char::from(delimiter)
            )));
        }
        Ok(DelimitedDecoder {
            cols: Columns::new(&schema, Allowed::Scalars, "DELIMITED")?,
            delimiter,
            spans: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.cols.schema.clone()
    }

    /// Splits `b` into field spans `(start, end, quoted)`; quoted spans exclude the quotes.
    fn split(&mut self, b: &[u8]) -> Result<(), RowError> {
        self.spans.clear();
        let d = self.delimiter;
        let mut i = 0;
        loop {
            if b.get(i) == Some(&b'"') {
                let start = i + 1;
                let mut j = start;
                loop {
                    match b.get(j) {
                        None => {
                            return Err(RowError::new(format!(
                                "invalid DELIMITED value: quote opened at byte {i} is not closed"
                            )));
                        }
                        Some(b'"') if b.get(j + 1) == Some(&b'"') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                self.spans.push((start, j, true));
                i = j + 1;
                match b.get(i) {
                    None => return Ok(()),
                    Some(&c) if c == d => i += 1,
                    Some(_) => {
                        return Err(RowError::new(format!(
                            "invalid DELIMITED value at byte {i}: expected the delimiter after a closing quote"
                        )));
                    }
                }
            } else {
                let end = b[i..].iter().position(|&c| c == d).map(|p| i + p);
                match end {
                    Some(e) => {
                        self.spans.push((i, e, false));
                        i = e + 1;
                    }
                    None => {
                        self.spans.push((i, b.len(), false));
                        return Ok(());
                    }
                }
            }
        }
    }
}

impl RowDecoder for DelimitedDecoder {
    fn append(&mut self, value: &[u8]) -> Result<(), RowError> {
        let b = value
            .strip_suffix(b"\r\n")
            .or_else(|| value.strip_suffix(b"\n"))
            .unwrap_or(value);
        if let Err(e) = std::str::from_utf8(b) {
            return Err(RowError::new(format!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            )));
        }
        self.split(b)?;
        let expected = self.cols.row.cols.len();
        if self.spans.len() != expected {
            return Err(RowError::new(format!(
                "expected {expected} fields, found {}",
                self.spans.len()
            )));
        }
        let mut r = Ok(());
        for (col, &(s, e, quoted)) in self.cols.row.cols.iter_mut().zip(&self.spans) {
            let text = &b[s..e];
            let one = if text.is_empty() {
                if quoted && matches!(col.kind, Kind::Str { .. } | Kind::Bin { .. }) {
                    col.close_bytes()
                } else {
                    col.push_null();
                    Ok(())
                }
            } else if quoted && text.contains(&b'"') {
                self.scratch.clear();
                let mut k = 0;
                while k < text.len() {
                    self.scratch.push(text[k]);
                    k += if text[k] == b'"' { 2 } else { 1 };
                }
                push_text(col, &self.scratch)
            } else {
                push_text(col, text)
            };
            if let Err(e) = one {
                r = Err(e.within(&col.name));
                break;
            }
        }
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

/// Encodes rows as delimited lines (ksqlDB's `DELIMITED` format), without a line end: null
/// is an empty field, the empty string `""`; a field holding the delimiter, a quote or a
/// line end is quoted (quotes doubled); `BOOLEAN` is `true`/`false`, numbers as in JSON
/// (`NaN`, `Infinity`, `-Infinity` for those doubles), `BYTES` base64, `TIMESTAMP` epoch
/// milliseconds, `DATE` epoch days, `TIME` milliseconds of the day. Only scalar columns.
pub struct DelimitedEncoder {
    delimiter: u8,
}

impl DelimitedEncoder {
    /// An encoder separating fields by `delimiter`.
    pub fn new(delimiter: u8) -> Self {
        DelimitedEncoder { delimiter }
    }

    fn field(&self, out: &mut Vec<u8>, s: &[u8]) {
        let d = self.delimiter;
        if s.is_empty() {
            out.extend_from_slice(b"\"\"");
        } else if s
            .iter()
            .any(|&c| c == d || c == b'"' || c == b'\n' || c == b'\r')
        {
            out.push(b'"');
            for &c in s {
                if c == b'"' {
                    out.push(b'"');
                }
                out.push(c);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(s);
        }
    }
}

impl Default for DelimitedEncoder {
    fn default() -> Self {
        DelimitedEncoder::new(b',')
    }
}

impl RowEncoder for DelimitedEncoder {
    fn encode(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<(), FormatError> {
        let schema = batch.schema();
        let mut views = Vec::with_capacity(batch.num_columns());
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            let v = View::new(c.as_ref(), f.name(), "DELIMITED")?;
            if matches!(
                v,
                View::List { .. } | View::Map { .. } | View::Struct { .. }
            ) {
                return Err(FormatError::UnsupportedType {
                    column: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    format: "DELIMITED",
                });
            }
            views.push(v);
        }
        for i in 0..batch.num_rows() {
            for (j, v) in views.iter().enumerate() {
                if j > 0 {
                    out.push(self.delimiter);
                }
                if v.is_null(i) {
                    continue;
                }
                match v {
                    View::Bool(a) => {
                        out.extend_from_slice(if a.value(i) { b"true" } else { b"false" });
                    }
                    View::U64(a) => write_int(out, a.value(i)),
                    View::F32(_) | View::F64(_) => {
                        let x = v.double(i).unwrap_or(f64::NAN);
                        if !write_f64(out, x) {
                            out.extend_from_slice(if x.is_nan() {
                                b"NaN".as_slice()
                            } else if x > 0.0 {
                                b"Infinity"
                            } else {
                                b"-Infinity"
                            });
                        }
                    }
                    View::Decimal(a, s) => write_decimal(out, a.value(i), *s),
                    View::Utf8(_) | View::LargeUtf8(_) | View::Utf8Views(_) => {
                        self.field(out, v.bytes(i).unwrap_or_default());
                    }
                    View::Binary(_) | View::LargeBinary(_) => {
                        let b = v.bytes(i).unwrap_or_default();
                        if b.is_empty() {
                            out.extend_from_slice(b"\"\"");
                        } else {
                            let start = out.len();
                            out.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
                            let n = STANDARD.encode_slice(b, &mut out[start..]).unwrap_or(0);
                            out.truncate(start + n);
                        }
                    }
                    _ => {
                        if let Some(x) = v.int(i) {
                            write_int(out, x);
                        }
                    }
                }
            }
            ends.push(out.len());
        }
        Ok(())
    }
}
