//! Instants as the CLI and the manifest write them: epoch milliseconds or UTC ISO-8601.

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-01-01T00:00:00.000Z` for epoch ms.
pub fn format_ms(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, f) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:03}Z")
}

/// Parses epoch milliseconds (`1767225600000`) or UTC ISO-8601 (`2026-01-01`,
/// `2026-01-01T06:30`, `2026-01-01T06:30:00.250Z`).
///
/// # Errors
/// Anything else, quoting the text.
pub fn parse_ms(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        format!(
            "{text:?} is neither epoch milliseconds nor an ISO-8601 UTC time like 2026-01-01T06:30:00Z"
        )
    };
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = t.split_once('T').unwrap_or((t, ""));
    let mut dp = date.split('-');
    let num = |s: Option<&str>| s.and_then(|v| v.parse::<i64>().ok()).ok_or_else(bad);
    let (y, m, d) = (num(dp.next())?, num(dp.next())?, num(dp.next())?);
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if !time.is_empty() {
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut tp = hms.split(':');
        let h = num(tp.next())?;
        let mi = num(tp.next())?;
        let s = match tp.next() {
            Some(v) => num(Some(v))?,
            None => 0,
        };
        if tp.next().is_some() || h > 23 || mi > 59 || s > 60 {
            return Err(bad());
        }
        let f = if frac.is_empty() {
            0
        } else {
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            digits.parse::<i64>().map_err(|_| bad())?
        };
        ms += h * 3_600_000 + mi * 60_000 + s * 1000 + f;
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(parse_ms("2026-01-01").unwrap(), 1_767_225_600_000);
        assert_eq!(
            parse_ms("2026-01-01T00:00:01.5Z").unwrap(),
            1_767_225_601_500
        );
        assert_eq!(format_ms(1_767_225_601_500), "2026-01-01T00:00:01.500Z");
        for ms in [0, 951_782_400_123, 1_767_225_600_000, 4_102_444_799_999] {
            assert_eq!(parse_ms(&format_ms(ms)).unwrap(), ms);
        }
        assert!(parse_ms("yesterday").unwrap_err().contains("yesterday"));
    }
}
