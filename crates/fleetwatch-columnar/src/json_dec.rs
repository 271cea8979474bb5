//! The JSON decoder: a hand-written byte scanner that writes straight into the column buffers.
//!
//! One pass per row: the value is checked to be UTF-8, then scanned; each field is matched to
//! a column (exactly first, then ignoring ASCII case, starting at the column after the last
//! match because fields usually come in column order) and its value converted and appended
//! in place — strings unescaped straight into the column's byte buffer. Fields without a
//! column are skipped (validated, nested ones too). A repeated field replaces the earlier
//! value. Columns the object did not name are null. If anything fails, every column is cut
//! back to the previous row count ([`crate::builder::Col::truncate`]).

use crate::RowDecoder;
use crate::builder::{Allowed, Col, Columns, Kind, Row};
use crate::error::{FormatError, RowError};
use crate::num::parse_i64;
use crate::text::{cannot_convert, cannot_convert_text, parse_f64, push_text};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

/// Deepest nesting of arrays and objects a skipped value may have.
const MAX_DEPTH: usize = 128;

/// Options of the JSON format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonOptions {
    /// ksqlDB's `WRAP_SINGLE_VALUE`: when false and the schema has exactly one column, the
    /// whole JSON value is that column (`42` rather than `{"X": 42}`). Default true.
    pub wrap_single_value: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            wrap_single_value: true,
        }
    }
}

/// Decodes JSON record values (ksqlDB's `JSON` format) into a [`RecordBatch`].
///
/// A value is a JSON object whose fields are matched to columns exactly first, then ignoring
/// ASCII case (columns are usually upper case, JSON fields lower); missing fields and JSON
/// `null` are null, unknown fields are skipped; the value `null` is a row of nulls.
/// Conversions follow ksqlDB: `BOOLEAN` from `true`/`false` or those strings in any case;
/// `INT`/`BIGINT` from in-range integers (no fraction or exponent) or strings holding one;
/// `DOUBLE` from any number or numeric string; `DECIMAL` from a number or string, exactly from
/// its text, refused if it needs rounding or more digits than the precision; `STRING` from a
/// string, or the JSON text of any other value (compacted); `BYTES` from base64;
/// `TIMESTAMP` from epoch milliseconds or ISO-8601 text (`2026-12-03T10:15:30.123Z`, no zone
/// meaning UTC, `+01:00` offsets); `DATE` from epoch days or `yyyy-MM-dd`; `TIME` from
/// milliseconds of the day or `HH:mm[:ss[.SSS]]`; `ARRAY`, `MAP` and `STRUCT` from arrays and
/// objects, recursively.
pub struct JsonDecoder {
    cols: Columns,
    unwrapped: bool,
    scratch: Vec<u8>,
}

impl JsonDecoder {
    /// A decoder for rows of `schema`.
    ///
    /// # Errors
    /// A column of a type outside the SQL type mapping.
    pub fn new(schema: SchemaRef, options: JsonOptions) -> Result<Self, FormatError> {
        let cols = Columns::new(&schema, Allowed::All, "JSON")?;
        let unwrapped = !options.wrap_single_value && cols.row.cols.len() == 1;
        Ok(JsonDecoder {
            cols,
            unwrapped,
            scratch: Vec::new(),
        })
    }

    /// The schema of the batches (the given one, every field nullable).
    pub fn schema(&self) -> SchemaRef {
        self.cols.schema.clone()
    }
}

impl RowDecoder for JsonDecoder {
    fn append(&mut self, value: &[u8]) -> Result<(), RowError> {
        if let Err(e) = std::str::from_utf8(value) {
            return Err(RowError::new(format!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            )));
        }
        let mut s = Scanner {
            b: value,
            i: 0,
            scratch: std::mem::take(&mut self.scratch),
        };
        let rows = self.cols.rows;
        let r = if self.unwrapped {
            let col = &mut self.cols.row.cols[0];
            s.value_into(col).map_err(|e| e.within(&col.name))
        } else {
            s.ws();
            match s.peek() {
                Some(b'{') => s.object_into_row(&mut self.cols.row, rows),
                Some(b'n') => s.literal(b"null"),
                _ => Err(s.err("expected a JSON object")),
            }
        }
        .and_then(|()| {
            s.ws();
            if s.i == s.b.len() {
                Ok(())
            } else {
                Err(s.err("expected the end of the value"))
            }
        });
        self.scratch = s.scratch;
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

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    scratch: Vec<u8>,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[cold]
    fn err(&self, what: &str) -> RowError {
        if self.i >= self.b.len() {
            RowError::new(format!(
                "invalid JSON at byte {}: unexpected end, {what}",
                self.i
            ))
        } else {
            RowError::new(format!("invalid JSON at byte {}: {what}", self.i))
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), RowError> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.err("expected a value"))
        }
    }

    /// Skips, eight bytes at a time, string bytes that need no look: no `"`, no backslash, no
    /// control character (the byte loop after it decides on those).
    #[inline]
    fn skip_plain_string_bytes(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        while let Some(w) = self.b.get(self.i..self.i + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            let w = u64::from_le_bytes(a);
            let quote = has_zero(w ^ (ONES * u64::from(b'"')));
            let backslash = has_zero(w ^ (ONES * u64::from(b'\\')));
            // Any byte < 0x20 (exact for a bound ≤ 0x80).
            let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
            if quote | backslash | control != 0 {
                return;
            }
            self.i += 8;
        }
    }

    /// Scans the string at `i` (which is `"`); returns the span of its contents and whether it
    /// has escapes.
    #[inline]
    fn string_span(&mut self) -> Result<(usize, usize, bool), RowError> {
        self.i += 1;
        let start = self.i;
        let mut esc = false;
        // Plain bytes eight at a time at the start and after each escape; within the last
        // word before a special byte, one at a time.
        let mut skip = true;
        loop {
            if skip {
                self.skip_plain_string_bytes();
                skip = false;
            }
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Ok((start, end, esc));
                }
                b'\\' => {
                    esc = true;
                    skip = true;
                    match self.b.get(self.i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.i += 2;
                        }
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 2..self.i + 6);
                            if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                self.i += 6;
                            } else {
                                self.i += 1;
                                return Err(self.err("invalid \\u escape"));
                            }
                        }
                        _ => {
                            self.i += 1;
                            return Err(self.err("invalid escape"));
                        }
                    }
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => self.i += 1,
            }
        }
    }

    /// Decodes the escapes of a string's contents (already checked by `string_span`).
    fn unescape(&self, start: usize, end: usize, out: &mut Vec<u8>) -> Result<(), RowError> {
        let s = &self.b[start..end];
        let mut i = 0;
        while i < s.len() {
            let run = s[i..]
                .iter()
                .position(|&c| c == b'\\')
                .unwrap_or(s.len() - i);
            out.extend_from_slice(&s[i..i + run]);
            i += run;
            if i >= s.len() {
                break;
            }
            let c = s[i + 1];
            i += 2;
            let simple = match c {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'b' => 8,
                b'f' => 12,
                b'u' => 0,
                other => other,
            };
            if c != b'u' {
                out.push(simple);
                continue;
            }
            let hi = hex4(&s[i..i + 4]);
            i += 4;
            let cp = if (0xD800..0xDC00).contains(&hi) {
                let lo = (s.get(i..i + 2) == Some(b"\\u"))
                    .then(|| s.get(i + 2..i + 6).map(hex4))
                    .flatten()
                    .filter(|lo| (0xDC00..0xE000).contains(lo));
                let Some(lo) = lo else {
                    return Err(RowError::new(format!(
                        "invalid JSON at byte {}: unpaired surrogate in \\u escape",
                        start + i - 6
                    )));
                };
                i += 6;
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            } else if (0xDC00..0xE000).contains(&hi) {
                return Err(RowError::new(format!(
                    "invalid JSON at byte {}: unpaired surrogate in \\u escape",
                    start + i - 6
                )));
            } else {
                hi
            };
            let ch = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
        Ok(())
    }

    /// Scans the number at `i`; returns its span and whether it is an integer.
    #[inline]
    fn number_span(&mut self) -> Result<(usize, usize, bool), RowError> {
        let start = self.i;
        let b = self.b;
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => {
                self.i = i;
                return Err(self.err("expected a digit"));
            }
        }
        let mut int = true;
        if b.get(i) == Some(&b'.') {
            int = false;
            i += 1;
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if s == i {
                self.i = i;
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            int = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if s == i {
                self.i = i;
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        self.i = i;
        Ok((start, i, int))
    }

    /// Skips (and checks) one value.
    fn skip_value(&mut self, depth: usize) -> Result<(), RowError> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string_span().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number_span().map(|_| ()),
            Some(open @ (b'[' | b'{')) => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nested deeper than 128 levels"));
                }
                let close = if open == b'[' { b']' } else { b'}' };
                self.i += 1;
                self.ws();
                if self.peek() == Some(close) {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    if open == b'{' {
                        self.ws();
                        if self.peek() != Some(b'"') {
                            return Err(self.err("expected a field name"));
                        }
                        self.string_span()?;
                        self.colon()?;
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(c) if c == close => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ if open == b'[' => return Err(self.err("expected ',' or ']'")),
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            _ => Err(self.err("expected a value")),
        }
    }

    #[inline]
    fn colon(&mut self) -> Result<(), RowError> {
        self.ws();
        if self.peek() == Some(b':') {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err("expected ':'"))
        }
    }

    /// Skips one value and appends its compact JSON text to `out`.
    fn compact_into(&mut self, out: &mut Vec<u8>) -> Result<(), RowError> {
        let start = self.i;
        self.skip_value(0)?;
        let mut in_str = false;
        let mut esc = false;
        for &c in &self.b[start..self.i] {
            if in_str {
                if esc {
                    esc = false;
                } else if c == b'\\' {
                    esc = true;
                } else if c == b'"' {
                    in_str = false;
                }
                out.push(c);
            } else if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                in_str = c == b'"';
                out.push(c);
            }
        }
        Ok(())
    }

    /// Decodes one value into `col`, appending one row to it.
    fn value_into(&mut self, col: &mut Col) -> Result<(), RowError> {
        self.ws();
        let b = self.b;
        match self.peek() {
            Some(b'n') => {
                self.literal(b"null")?;
                col.push_null();
                Ok(())
            }
            Some(b'"') => {
                let (s, e, esc) = self.string_span()?;
                match &mut col.kind {
                    Kind::Str { data, .. } => {
                        if esc {
                            self.unescape(s, e, data)?;
                        } else {
                            data.extend_from_slice(&b[s..e]);
                        }
                        col.close_bytes()
                    }
                    _ if esc => {
                        let mut scratch = std::mem::take(&mut self.scratch);
                        scratch.clear();
                        let r = self
                            .unescape(s, e, &mut scratch)
                            .and_then(|()| self.text_into(col, &scratch));
                        self.scratch = scratch;
                        r
                    }
                    _ => self.text_into(col, &b[s..e]),
                }
            }
            Some(c @ (b't' | b'f')) => {
                let (lit, v): (&[u8], bool) = if c == b't' {
                    (b"true", true)
                } else {
                    (b"false", false)
                };
                self.literal(lit)?;
                match &mut col.kind {
                    Kind::Bool(bits) => {
                        bits.append(v);
                        col.valid();
                        Ok(())
                    }
                    Kind::Str { data, .. } => {
                        data.extend_from_slice(lit);
                        col.close_bytes()
                    }
                    _ => Err(cannot_convert(if v { "true" } else { "false" }, &col.kind)),
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let (s, e, int) = self.number_span()?;
                let t = &b[s..e];
                let ok = match &mut col.kind {
                    Kind::Int(v) => int_of(t, int)
                        .and_then(|x| i32::try_from(x).ok())
                        .map(|x| v.push(x)),
                    Kind::BigInt(v) => int_of(t, int).map(|x| v.push(x)),
                    Kind::Double(v) => parse_f64(t).map(|x| v.push(x)),
                    Kind::Decimal {
                        vals,
                        precision,
                        scale,
                    } => crate::num::parse_decimal(t, *precision, *scale).map(|x| vals.push(x)),
                    Kind::Timestamp(v) => int_of(t, int).map(|x| v.push(x)),
                    Kind::Date(v) => int_of(t, int)
                        .and_then(|x| i32::try_from(x).ok())
                        .map(|x| v.push(x)),
                    Kind::Time(v) => int_of(t, int)
                        .filter(|x| (0..86_400_000).contains(x))
                        .and_then(|x| i32::try_from(x).ok())
                        .map(|x| v.push(x)),
                    Kind::Str { data, .. } => {
                        data.extend_from_slice(t);
                        return col.close_bytes();
                    }
                    _ => None,
                };
                match ok {
                    Some(()) => {
                        col.valid();
                        Ok(())
                    }
                    None => Err(cannot_convert(
                        std::str::from_utf8(t).unwrap_or("a number"),
                        &col.kind,
                    )),
                }
            }
            Some(b'[') => match &mut col.kind {
                Kind::List { item, .. } => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                    } else {
                        loop {
                            self.value_into(item)?;
                            self.ws();
                            match self.peek() {
                                Some(b',') => self.i += 1,
                                Some(b']') => {
                                    self.i += 1;
                                    break;
                                }
                                _ => return Err(self.err("expected ',' or ']'")),
                            }
                        }
                    }
                    col.close_nested()
                }
                Kind::Str { data, .. } => {
                    self.compact_into(data)?;
                    col.close_bytes()
                }
                _ => Err(cannot_convert("an array", &col.kind)),
            },
            Some(b'{') => match &mut col.kind {
                Kind::Struct(row) => {
                    let len = col.valid.len();
                    self.object_into_row(row, len)?;
                    row.fill_missing(len);
                    col.valid();
                    Ok(())
                }
                Kind::Map { keys, values, .. } => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                    } else {
                        loop {
                            self.ws();
                            if self.peek() != Some(b'"') {
                                return Err(self.err("expected a field name"));
                            }
                            let (s, e, esc) = self.string_span()?;
                            if let Kind::Str { data, .. } = &mut keys.kind {
                                if esc {
                                    self.unescape(s, e, data)?;
                                } else {
                                    data.extend_from_slice(&b[s..e]);
                                }
                            }
                            keys.close_bytes()?;
                            self.colon()?;
                            self.value_into(values)?;
                            self.ws();
                            match self.peek() {
                                Some(b',') => self.i += 1,
                                Some(b'}') => {
                                    self.i += 1;
                                    break;
                                }
                                _ => return Err(self.err("expected ',' or '}'")),
                            }
                        }
                    }
                    col.close_nested()
                }
                Kind::Str { data, .. } => {
                    self.compact_into(data)?;
                    col.close_bytes()
                }
                _ => Err(cannot_convert("an object", &col.kind)),
            },
            _ => Err(self.err("expected a value")),
        }
    }

    /// A string's text into a non-STRING column.
    fn text_into(&self, col: &mut Col, t: &[u8]) -> Result<(), RowError> {
        if col.is_scalar() {
            push_text(col, t)
        } else {
            Err(cannot_convert_text(t, &col.kind))
        }
    }

    /// Decodes the object at `i` into the columns of `row`, each of which has `len` rows
    /// before; columns it names get one more (a repeated field replaces the earlier value).
    /// Objects from one producer repeat their shape: when the name at position `k` of the
    /// last object is here again (at `i`, the opening quote), byte for byte and closed by a
    /// quote, takes it and its colon without scanning; returns the column it matched then.
    /// `None` (nothing consumed): scan the name.
    #[inline]
    fn remembered_name(&mut self, row: &Row, k: usize) -> Result<Option<Option<usize>>, RowError> {
        let Some((name, found)) = row.shape_at(k) else {
            return Ok(None);
        };
        let b = self.b;
        let at = self.i + 1;
        let end = at + name.len();
        // Short names: a byte loop beats a call to memcmp.
        let same = b
            .get(at..end)
            .is_some_and(|raw| raw.iter().zip(name).all(|(x, y)| x == y));
        if !same || b.get(end) != Some(&b'"') {
            return Ok(None);
        }
        if b.get(end + 1) == Some(&b':') {
            self.i = end + 2; // compact `"name":`
        } else {
            self.i = end + 1;
            self.colon()?;
        }
        Ok(Some(found))
    }

    fn object_into_row(&mut self, row: &mut Row, len: usize) -> Result<(), RowError> {
        let b = self.b;
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut hint = 0;
        let mut k = 0;
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a field name"));
            }
            let found = match self.remembered_name(row, k)? {
                Some(found) => found,
                None => {
                    let (s, e, esc) = self.string_span()?;
                    let found = if esc {
                        let mut key = std::mem::take(&mut self.scratch);
                        key.clear();
                        let r = self.unescape(s, e, &mut key);
                        let found = row.lookup_at(k, &key, hint);
                        self.scratch = key;
                        r?;
                        found
                    } else {
                        row.lookup_at(k, &b[s..e], hint)
                    };
                    self.colon()?;
                    found
                }
            };
            k += 1;
            match found {
                Some(ci) => {
                    hint = ci + 1;
                    let col = &mut row.cols[ci];
                    if col.len() > len {
                        col.truncate(len);
                    }
                    self.value_into(col).map_err(|e| e.within(&col.name))?;
                }
                None => self.skip_value(0)?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
}

#[inline]
fn int_of(t: &[u8], int: bool) -> Option<i64> {
    if int { parse_i64(t) } else { None }
}

fn hex4(h: &[u8]) -> u32 {
    h.iter().fold(0, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0,
        };
        acc * 16 + u32::from(d)
    })
}
