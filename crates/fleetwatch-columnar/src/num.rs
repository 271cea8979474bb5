//! Numbers as text: exact integer and decimal parsing, and the writers the encoders share.

/// Parses an optionally signed decimal integer (no fraction, no exponent); `None` when it is
/// not one or does not fit an `i64`.
#[inline]
pub(crate) fn parse_i64(t: &[u8]) -> Option<i64> {
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        // Accumulate negatively so that i64::MIN fits.
        v = v.checked_mul(10)?.checked_sub(i64::from(d))?;
    }
    if neg { Some(v) } else { v.checked_neg() }
}

/// `10^n` for `n <= 38`.
pub(crate) fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Parses decimal text (`-12.5`, `1.25e3`, `+0.1`) exactly into an unscaled value at `scale`,
/// refusing text with more than `precision` digits or digits below the scale.
pub(crate) fn parse_decimal(t: &[u8], precision: u8, scale: i8) -> Option<i128> {
    let mut i = 0;
    let neg = match t.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < t.len() && t[i].is_ascii_digit() {
        i += 1;
    }
    let int_part = &t[int_start..i];
    let mut frac_part: &[u8] = &[];
    if i < t.len() && t[i] == b'.' {
        i += 1;
        let s = i;
        while i < t.len() && t[i].is_ascii_digit() {
            i += 1;
        }
        frac_part = &t[s..i];
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if i < t.len() && (t[i] == b'e' || t[i] == b'E') {
        i += 1;
        let s = i;
        if i < t.len() && (t[i] == b'+' || t[i] == b'-') {
            i += 1;
        }
        let ds = i;
        while i < t.len() && t[i].is_ascii_digit() {
            i += 1;
        }
        if ds == i {
            return None;
        }
        exp = parse_i64(&t[s..i]).map(|e| e.clamp(-10_000, 10_000))?;
    }
    if i != t.len() {
        return None;
    }
    // Trailing zeros of the fraction carry no value.
    let mut frac = frac_part;
    while let [rest @ .., b'0'] = frac {
        frac = rest;
    }
    let mut digits: i128 = 0;
    let mut seen = false;
    for &c in int_part.iter().chain(frac) {
        let d = i128::from(c - b'0');
        if !seen && d == 0 {
            continue;
        }
        seen = true;
        digits = digits.checked_mul(10)?.checked_add(d)?;
    }
    let shift = i64::from(scale) + exp - i64::try_from(frac.len()).ok()?;
    let unscaled = if digits == 0 {
        0
    } else if shift >= 0 {
        digits.checked_mul(pow10(u32::try_from(shift).ok()?)?)?
    } else {
        let p = pow10(u32::try_from(-shift).ok()?)?;
        if digits % p != 0 {
            return None;
        }
        digits / p
    };
    if unscaled >= pow10(u32::from(precision))? {
        return None;
    }
    Some(if neg { -unscaled } else { unscaled })
}

/// Writes an unscaled decimal with exactly `scale` digits after the point (`-0.05`).
pub(crate) fn write_decimal(out: &mut Vec<u8>, v: i128, scale: i8) {
    let mut buf = itoa::Buffer::new();
    let abs = buf.format(v.unsigned_abs()).as_bytes();
    if v < 0 {
        out.push(b'-');
    }
    let s = usize::try_from(scale).unwrap_or(0);
    if s == 0 {
        out.extend_from_slice(abs);
        return;
    }
    if abs.len() <= s {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', s - abs.len()));
        out.extend_from_slice(abs);
    } else {
        let (a, b) = abs.split_at(abs.len() - s);
        out.extend_from_slice(a);
        out.push(b'.');
        out.extend_from_slice(b);
    }
}

/// Writes an integer.
#[inline]
pub(crate) fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// Writes a finite double as the shortest text that reads back to it, with `.0` when it is
/// integral (`1.0`, `0.1`, `1e300`); returns false (writing nothing) for NaN and infinities.
#[inline]
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    if write_short_decimal(out, v) {
        return true;
    }
    let mut buf = ryu::Buffer::new();
    out.extend_from_slice(buf.format_finite(v).as_bytes());
    true
}

/// The common case of sensor readings and amounts — a double that is a decimal with at most
/// four fractional digits, 1e-4 ≤ |v| < 1e15 — written without the shortest-digits search,
/// byte for byte as ryu writes it (`85.5`, `12.0`, `0.0042`).
///
/// Why it is the same text: for the smallest `k` with `fl(y / 10^k) = v` (`y` an integer,
/// IEEE division correctly rounded), the decimal `y·10^-k` reads back as `v`, and no decimal
/// with fewer fractional digits does; `|y| < 2^52` makes the spacing of doubles near `v`
/// smaller than `10^-k`, so no other `k`-digit decimal reads back as `v` either — the one
/// shortest round-trip text, which is what ryu prints, in plain notation in this range.
#[inline]
fn write_short_decimal(out: &mut Vec<u8>, v: f64) -> bool {
    const POW: [f64; 5] = [1.0, 10.0, 100.0, 1_000.0, 10_000.0];
    const LIMIT: f64 = 4_503_599_627_370_496.0; // 2^52
    let a = v.abs();
    if !(1e-4..1e15).contains(&a) {
        return false;
    }
    for (k, &p) in POW.iter().enumerate() {
        let y = (a * p).round();
        if y >= LIMIT {
            return false;
        }
        if y / p == a {
            let (y, p) = (y as u64, p as u64);
            if v < 0.0 {
                out.push(b'-');
            }
            write_int(out, y / p);
            out.push(b'.');
            if k == 0 {
                out.push(b'0');
            } else {
                let mut digits = [b'0'; 4];
                let mut f = y % p;
                for d in digits[..k].iter_mut().rev() {
                    *d = b'0' + (f % 10) as u8;
                    f /= 10;
                }
                out.extend_from_slice(&digits[..k]);
            }
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"+12"), Some(12));
        assert_eq!(parse_i64(b"1.0"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b""), None);
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal(b"12.5", 5, 2), Some(1250));
        assert_eq!(parse_decimal(b"-0.05", 3, 2), Some(-5));
        assert_eq!(parse_decimal(b"1.25e2", 5, 0), Some(125));
        assert_eq!(parse_decimal(b"1.2500", 3, 2), Some(125));
        assert_eq!(parse_decimal(b"0.1", 38, 37), Some(10i128.pow(36)));
        // Digits below the scale, too many digits, garbage.
        assert_eq!(parse_decimal(b"1.234", 5, 2), None);
        assert_eq!(parse_decimal(b"1000", 3, 0), None);
        assert_eq!(parse_decimal(b"1e", 3, 0), None);
        assert_eq!(parse_decimal(b".", 3, 0), None);
        assert_eq!(parse_decimal(b"1e99999", 38, 0), None);
        assert_eq!(parse_decimal(b"0e99999", 38, 0), Some(0));
    }

    #[test]
    fn decimal_text() {
        let w = |v, s| {
            let mut o = Vec::new();
            write_decimal(&mut o, v, s);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(w(1250, 2), "12.50");
        assert_eq!(w(-5, 2), "-0.05");
        assert_eq!(w(0, 3), "0.000");
        assert_eq!(w(42, 0), "42");
        assert_eq!(w(i128::MIN + 1, 0), (i128::MIN + 1).to_string());
    }

    #[test]
    fn the_short_decimal_path_writes_what_ryu_writes() {
        let ryu = |v: f64| ryu::Buffer::new().format_finite(v).to_string();
        let ours = |v: f64| {
            let mut o = Vec::new();
            assert!(write_f64(&mut o, v));
            String::from_utf8(o).unwrap()
        };
        let mut checked = 0u64;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..300_000 {
            let r = next();
            // Decimals of every digit count and scale, their neighbours, and raw bit patterns.
            let k = (r % 7) as i32;
            let mag = 10f64.powi((r >> 8) as i32 % 17);
            let d = ((r >> 16) % 1_000_000_007) as f64 * mag / 10f64.powi(k + 6);
            let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
            let bits = f64::from_bits(next());
            for v in [
                sign * d,
                sign * f64::from_bits(d.to_bits() + 1),
                sign * f64::from_bits(d.to_bits().saturating_sub(1)),
                bits,
                (r % 100_000) as f64 / 10.0,
                (r % 100_000) as f64 / 100.0 + 0.005,
            ] {
                if v.is_finite() {
                    assert_eq!(ours(v), ryu(v), "{v:e} ({:#x})", v.to_bits());
                    checked += 1;
                }
            }
        }
        assert!(checked > 1_500_000);
        for v in [
            85.5,
            -0.0001,
            0.0001,
            1e-4,
            9.99e14,
            1e15,
            4503599627370495.5,
            0.1 + 0.2,
            123.0,
            1e-5,
            -7.25,
        ] {
            assert_eq!(ours(v), ryu(v), "{v:e}");
        }
    }

    #[test]
    fn doubles_are_java_like() {
        let w = |v| {
            let mut o = Vec::new();
            write_f64(&mut o, v).then(|| String::from_utf8(o).unwrap())
        };
        assert_eq!(w(1.0).as_deref(), Some("1.0"));
        assert_eq!(w(0.1).as_deref(), Some("0.1"));
        assert_eq!(w(-2.5).as_deref(), Some("-2.5"));
        assert_eq!(w(f64::NAN), None);
        assert_eq!(w(f64::INFINITY), None);
    }
}
