//! Hand-written JSON output: numbers in fixed decimals (so that output is compact and the
//! same everywhere), strings that the simulator itself makes (ASCII, never needing escapes).

/// Appends a JSON string. The simulator's strings are ASCII letters, digits, spaces and
/// `-`/`'`; anything else is escaped anyway.
#[inline]
pub fn string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    if s.iter()
        .all(|&c| c >= 0x20 && c != b'"' && c != b'\\' && c < 0x7f)
    {
        buf.extend_from_slice(s);
    } else {
        for &c in s {
            match c {
                b'"' => buf.extend_from_slice(b"\\\""),
                b'\\' => buf.extend_from_slice(b"\\\\"),
                c if !(0x20..0x7f).contains(&c) => {
                    buf.extend_from_slice(b"\\u00");
                    buf.push(HEX[(c >> 4) as usize]);
                    buf.push(HEX[(c & 15) as usize]);
                }
                c => buf.push(c),
            }
        }
    }
    buf.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends an integer.
#[inline]
pub fn int(buf: &mut Vec<u8>, v: i64) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(v).as_bytes());
}

const POW10: [u64; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// Appends `x` rounded to `decimals` (≤ 6) decimals, always with that many digits after the
/// point (`13.80`); not-finite values (which the model never makes) come out as `0`.
#[inline]
pub fn fixed(buf: &mut Vec<u8>, x: f64, decimals: usize) {
    let scale = POW10[decimals.min(6)];
    let v = (x * scale as f64).round();
    if !v.is_finite() || v.abs() >= 9.0e15 {
        buf.push(b'0');
        return;
    }
    let n = v.abs() as u64;
    if v < 0.0 && n != 0 {
        buf.push(b'-');
    }
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(n / scale).as_bytes());
    if decimals > 0 {
        buf.push(b'.');
        let frac = n % scale;
        let mut div = scale / 10;
        while div > 0 {
            buf.push(b'0' + ((frac / div) % 10) as u8);
            div /= 10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64, d: usize) -> String {
        let mut b = Vec::new();
        fixed(&mut b, x, d);
        String::from_utf8(b).unwrap_or_default()
    }

    #[test]
    fn fixed_decimals() {
        assert_eq!(f(13.8, 2), "13.80");
        assert_eq!(f(-0.004, 2), "0.00");
        assert_eq!(f(-0.006, 2), "-0.01");
        assert_eq!(f(48.137_154_4, 6), "48.137154");
        assert_eq!(f(0.05, 1), "0.1");
        assert_eq!(f(1234.0, 0), "1234");
        assert_eq!(f(f64::NAN, 2), "0");
        assert_eq!(f(-11.5, 6), "-11.500000");
    }

    #[test]
    fn strings_are_escaped_when_needed() {
        let mut b = Vec::new();
        string(&mut b, b"a\"b\\c\n");
        assert_eq!(b, b"\"a\\\"b\\\\c\\u000a\"");
    }
}
