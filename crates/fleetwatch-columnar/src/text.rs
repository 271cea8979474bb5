//! Text into a scalar column, as ksqlDB converts JSON strings and DELIMITED fields: booleans,
//! integers, doubles, exact decimals, base64 bytes, timestamps, dates and times.

use crate::builder::{Col, Kind, sql_name};
use crate::error::RowError;
use crate::num::{parse_decimal, parse_i64};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The error for a value that does not convert: `cannot convert "fast" to DOUBLE`.
#[cold]
pub(crate) fn cannot_convert(shown: &str, kind: &Kind) -> RowError {
    let mut s: String = shown.chars().take(64).collect();
    if s.len() < shown.len() {
        s.push('…');
    }
    RowError::new(format!("cannot convert {s} to {}", sql_name(kind)))
}

/// The error for a string value that does not convert, the string quoted.
#[cold]
pub(crate) fn cannot_convert_text(t: &[u8], kind: &Kind) -> RowError {
    let shown = format!("{:?}", String::from_utf8_lossy(t));
    cannot_convert(&shown, kind)
}

fn trim(t: &[u8]) -> &[u8] {
    t.trim_ascii()
}

/// `true` / `false` in any case.
pub(crate) fn parse_bool(t: &[u8]) -> Option<bool> {
    if t.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if t.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

/// Parses a double from ASCII text.
#[inline]
pub(crate) fn parse_f64(t: &[u8]) -> Option<f64> {
    if let Some(v) = fast_f64(t) {
        return Some(v);
    }
    std::str::from_utf8(t).ok()?.parse().ok()
}

/// Clinger's fast path: `[-]digits[.digits]` with at most 15 significant digits and at most
/// 22 after the point is `m / 10^k` with both exactly representable, so one IEEE division
/// rounds correctly. Anything else returns `None` (the full parser handles it).
#[inline]
fn fast_f64(t: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (neg, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    if t.is_empty() || t.len() > 40 {
        return None;
    }
    let mut m: u64 = 0;
    let mut digits = 0;
    let mut frac = 0;
    let mut seen_point = false;
    let mut any = false;
    for &c in t {
        match c {
            b'0'..=b'9' => {
                any = true;
                if m != 0 || c != b'0' {
                    digits += 1;
                }
                m = m * 10 + u64::from(c - b'0');
                if seen_point {
                    frac += 1;
                }
                if digits > 15 {
                    return None;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => return None,
        }
    }
    if !any || frac > 22 {
        return None;
    }
    let v = m as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// Appends the value of (UTF-8) text `t` to scalar column `col`.
pub(crate) fn push_text(col: &mut Col, t: &[u8]) -> Result<(), RowError> {
    let ok = match &mut col.kind {
        Kind::Bool(v) => parse_bool(trim(t)).map(|b| v.append(b)),
        Kind::Int(v) => parse_i64(trim(t))
            .and_then(|x| i32::try_from(x).ok())
            .map(|x| v.push(x)),
        Kind::BigInt(v) => parse_i64(trim(t)).map(|x| v.push(x)),
        Kind::Double(v) => parse_f64(trim(t)).map(|x| v.push(x)),
        Kind::Decimal {
            vals,
            precision,
            scale,
        } => parse_decimal(trim(t), *precision, *scale).map(|x| vals.push(x)),
        Kind::Str { data, .. } => {
            data.extend_from_slice(t);
            return col.close_bytes();
        }
        Kind::Bin { data, .. } => {
            let start = data.len();
            if STANDARD.decode_vec(trim(t), data).is_err() {
                data.truncate(start);
                return Err(cannot_convert_text(t, &col.kind));
            }
            return col.close_bytes();
        }
        Kind::Timestamp(v) => {
            let t = trim(t);
            parse_i64(t)
                .or_else(|| parse_timestamp(t))
                .map(|x| v.push(x))
        }
        Kind::Date(v) => {
            let t = trim(t);
            parse_i64(t)
                .and_then(|x| i32::try_from(x).ok())
                .or_else(|| parse_date(t).and_then(|d| i32::try_from(d).ok()))
                .map(|x| v.push(x))
        }
        Kind::Time(v) => {
            let t = trim(t);
            parse_i64(t)
                .filter(|x| (0..86_400_000).contains(x))
                .or_else(|| parse_time(t))
                .and_then(|x| i32::try_from(x).ok())
                .map(|x| v.push(x))
        }
        Kind::List { .. } | Kind::Map { .. } | Kind::Struct(_) => None,
    };
    match ok {
        Some(()) => {
            col.valid();
            Ok(())
        }
        None => Err(cannot_convert_text(t, &col.kind)),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(t: &[u8], n: usize) -> Option<u32> {
    if t.len() < n {
        return None;
    }
    let mut v = 0u32;
    for &c in &t[..n] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// `yyyy-MM-dd` → days since the epoch.
pub(crate) fn parse_date(t: &[u8]) -> Option<i64> {
    if t.len() != 10 {
        return None;
    }
    parse_date_prefix(t)
}

fn parse_date_prefix(t: &[u8]) -> Option<i64> {
    let y = digits(t, 4)?;
    if t.get(4) != Some(&b'-') || t.get(7) != Some(&b'-') {
        return None;
    }
    let m = digits(&t[5..], 2)?;
    let d = digits(&t[8..], 2)?;
    let y = i64::from(y);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `HH:mm[:ss[.fraction]]` → milliseconds; returns the milliseconds and the bytes read.
fn parse_time_prefix(t: &[u8]) -> Option<(i64, usize)> {
    let h = digits(t, 2)?;
    if t.get(2) != Some(&b':') {
        return None;
    }
    let mi = digits(&t[3..], 2)?;
    let mut i = 5;
    let mut s = 0;
    let mut ms = 0;
    if t.get(i) == Some(&b':') {
        s = digits(&t[i + 1..], 2)?;
        i += 3;
        if t.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < t.len() && t[i].is_ascii_digit() {
                if i - start < 3 {
                    ms = ms * 10 + u32::from(t[i] - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 || n > 9 {
                return None;
            }
            for _ in n..3 {
                ms *= 10;
            }
        }
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some((i64::from(((h * 60 + mi) * 60 + s) * 1000 + ms), i))
}

/// `HH:mm[:ss[.SSS]]` → milliseconds of the day.
pub(crate) fn parse_time(t: &[u8]) -> Option<i64> {
    let (ms, n) = parse_time_prefix(t)?;
    (n == t.len()).then_some(ms)
}

/// ISO-8601 `yyyy-MM-dd[Thh:mm[:ss[.fraction]]][Z|±hh[:mm]]` → epoch milliseconds (UTC when
/// no zone is given).
pub(crate) fn parse_timestamp(t: &[u8]) -> Option<i64> {
    let days = parse_date_prefix(t)?;
    let mut ms = days * 86_400_000;
    if t.len() == 10 {
        return Some(ms);
    }
    if t[10] != b'T' && t[10] != b' ' {
        return None;
    }
    let rest = &t[11..];
    let (tod, n) = parse_time_prefix(rest)?;
    ms += tod;
    let zone = &rest[n..];
    let off = match zone {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), z @ ..] => {
            let h = digits(z, 2)?;
            let m = match &z[2..] {
                [] => 0,
                [b':', m @ ..] if m.len() == 2 => digits(m, 2)?,
                m if m.len() == 2 => digits(m, 2)?,
                _ => return None,
            };
            if h > 18 || m > 59 {
                return None;
            }
            let off = i64::from(h * 60 + m) * 60_000;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    Some(ms - off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(parse_date(b"2026-12-03"), Some(20_790));
        assert_eq!(parse_date(b"2026-02-29"), None);
        assert_eq!(parse_date(b"2024-02-29"), Some(19_782));
        assert_eq!(parse_date(b"2026-13-01"), None);
        assert_eq!(parse_date(b"2026-1-01"), None);
    }

    #[test]
    fn fast_doubles_match_the_full_parser() {
        for t in [
            "0",
            "-0",
            "1.5",
            "48.137154",
            "-11.575382",
            "0.1",
            "123456789012345",
            "0.000000000000000000001",
            "9007199254740993",
            "2.2250738585072014",
            "1.7976931348623157",
            "100.",
            ".5",
        ] {
            let want: Option<f64> = t.parse().ok();
            assert_eq!(
                parse_f64(t.as_bytes()).map(f64::to_bits),
                want.map(f64::to_bits),
                "{t}"
            );
        }
        // Random ones.
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 1_000_000_000_000_000) as i64 - 500_000_000_000_000;
            let point = (x >> 50) as usize % 17;
            let mut s = digits.unsigned_abs().to_string();
            if point < s.len() {
                s.insert(s.len() - point, '.');
            }
            if digits < 0 {
                s.insert(0, '-');
            }
            let want: f64 = s.parse().unwrap();
            assert_eq!(
                parse_f64(s.as_bytes()).map(f64::to_bits),
                Some(want.to_bits()),
                "{s}"
            );
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time(b"10:15:30"), Some(36_930_000));
        assert_eq!(parse_time(b"10:15:30.123"), Some(36_930_123));
        assert_eq!(parse_time(b"10:15:30.1"), Some(36_930_100));
        assert_eq!(parse_time(b"10:15:30.123456"), Some(36_930_123));
        assert_eq!(parse_time(b"10:15"), Some(36_900_000));
        assert_eq!(parse_time(b"24:00:00"), None);
        assert_eq!(parse_time(b"10:15:30."), None);
        assert_eq!(parse_time(b"10:15:30x"), None);
    }

    #[test]
    fn timestamps() {
        let base = 20_790 * 86_400_000 + 36_930_000;
        assert_eq!(
            parse_timestamp(b"2026-12-03T10:15:30.123Z"),
            Some(base + 123)
        );
        assert_eq!(parse_timestamp(b"2026-12-03T10:15:30"), Some(base));
        assert_eq!(
            parse_timestamp(b"2026-12-03T10:15:30+01:00"),
            Some(base - 3_600_000)
        );
        assert_eq!(
            parse_timestamp(b"2026-12-03T10:15:30-0130"),
            Some(base + 5_400_000)
        );
        assert_eq!(parse_timestamp(b"2026-12-03"), Some(20_790 * 86_400_000));
        assert_eq!(parse_timestamp(b"2026-12-03T10:15:30+1"), None);
        assert_eq!(parse_timestamp(b"2026-12-03X10:15:30"), None);
        assert_eq!(parse_timestamp(b"1969-12-31T23:59:59.999Z"), Some(-1));
    }
}
