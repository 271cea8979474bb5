//! ksqlDB's date and time functions, with Java `DateTimeFormatter` patterns
//! (`yyyy-MM-dd'T'HH:mm:ss.SSSX`) translated once per distinct pattern into chrono's.

use super::ksql::{array, scalar_str};
use super::{ArgType as T, FunctionDoc, Udf, Variant, exec, fail};
use arrow::array::{Array, AsArray, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use datafusion_common::{Result as DfResult, ScalarValue};
use datafusion_expr::ColumnarValue;
use std::sync::Arc;

/// A Java date-time pattern translated to chrono's strftime syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaFormat {
    /// The chrono pattern.
    pub strftime: String,
    /// Whether the pattern has a zone or offset (parsing then needs none given).
    pub has_zone: bool,
    /// Whether it has a time of day (else parsing yields midnight).
    pub has_time: bool,
}

impl JavaFormat {
    /// Translates a pattern; unsupported letters are an error naming them.
    pub fn parse(pattern: &str) -> Result<JavaFormat, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut out = String::new();
        let mut has_zone = false;
        let mut has_time = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // Quoted literal; '' is a quote.
                if chars.get(i + 1) == Some(&'\'') {
                    out.push('\'');
                    i += 2;
                    continue;
                }
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '\'' {
                    push_literal(&mut out, chars[j]);
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!("unclosed quote in the pattern {pattern:?}"));
                }
                i = j + 1;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                push_literal(&mut out, c);
                i += 1;
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            let spec = match (c, n) {
                ('y' | 'u', 2) => "%y",
                ('y' | 'u', _) => "%Y",
                ('M', 1) => "%-m",
                ('M', 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', 1) => "%-d",
                ('d', _) => "%d",
                ('D', _) => "%j",
                ('H', 1) => "%-H",
                ('H', _) => "%H",
                ('h', 1) => "%-I",
                ('h', _) => "%I",
                ('m', 1) => "%-M",
                ('m', _) => "%M",
                ('s', 1) => "%-S",
                ('s', _) => "%S",
                ('S', 1..=3) => "%3f",
                ('S', 4..=6) => "%6f",
                ('S', _) => "%9f",
                ('a', _) => "%p",
                ('E', 1..=3) => "%a",
                ('E', _) => "%A",
                ('Z', _) | ('x', _) => "%z",
                ('X', _) | ('z', _) => "%:z",
                _ => {
                    return Err(format!(
                        "the pattern letter {c:?} ({n}×) in {pattern:?} is not supported"
                    ));
                }
            };
            if matches!(c, 'H' | 'h' | 'm' | 's' | 'S' | 'a') {
                has_time = true;
            }
            if matches!(c, 'Z' | 'x' | 'X' | 'z') {
                has_zone = true;
            }
            if c == 'S' {
                // %3f etc. print only the digits; Java's S-run follows a literal '.'.
                out.push_str(spec);
            } else {
                out.push_str(spec);
            }
            i += n;
        }
        if StrftimeItems::new(&out).any(|it| matches!(it, Item::Error)) {
            return Err(format!("the pattern {pattern:?} cannot be used"));
        }
        Ok(JavaFormat {
            strftime: out,
            has_zone,
            has_time,
        })
    }

    /// Formats epoch milliseconds in a zone.
    pub fn format(&self, ms: i64, tz: &Zone) -> Option<String> {
        let utc = DateTime::<Utc>::from_timestamp_millis(ms)?;
        Some(match tz {
            Zone::Utc => utc.format(&self.strftime).to_string(),
            Zone::Fixed(off) => utc.with_timezone(off).format(&self.strftime).to_string(),
            Zone::Named(z) => utc.with_timezone(z).format(&self.strftime).to_string(),
        })
    }

    /// Parses a string to epoch milliseconds (the zone is used when the pattern has none).
    pub fn parse_ms(&self, s: &str, tz: &Zone) -> Result<i64, String> {
        let bad = |e: chrono::ParseError| format!("cannot parse {s:?} with the pattern: {e}");
        if self.has_zone {
            return DateTime::parse_from_str(s, &self.strftime)
                .map(|d| d.timestamp_millis())
                .map_err(bad);
        }
        let naive = if self.has_time {
            NaiveDateTime::parse_from_str(s, &self.strftime).map_err(bad)?
        } else {
            NaiveDate::parse_from_str(s, &self.strftime)
                .map_err(bad)?
                .and_time(NaiveTime::MIN)
        };
        let local = match tz {
            Zone::Utc => Some(naive.and_utc()),
            Zone::Fixed(off) => off
                .from_local_datetime(&naive)
                .single()
                .map(|d| d.with_timezone(&Utc)),
            Zone::Named(z) => z
                .from_local_datetime(&naive)
                .earliest()
                .map(|d| d.with_timezone(&Utc)),
        };
        local
            .map(|d| d.timestamp_millis())
            .ok_or_else(|| format!("{s:?} does not exist in that time zone"))
    }
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// A time zone argument: `UTC`, an offset (`+01:00`) or an IANA name (`Europe/Berlin`).
#[derive(Debug, Clone)]
pub enum Zone {
    /// UTC.
    Utc,
    /// A fixed offset.
    Fixed(chrono::FixedOffset),
    /// A named zone.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Parses a zone name.
    pub fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("UTC")
            || t.eq_ignore_ascii_case("Z")
            || t.eq_ignore_ascii_case("GMT")
        {
            return Ok(Zone::Utc);
        }
        let off = t
            .strip_prefix("UTC")
            .or_else(|| t.strip_prefix("GMT"))
            .unwrap_or(t);
        if let Some(sign) = off.chars().next().filter(|c| *c == '+' || *c == '-') {
            let digits: Vec<i32> = off[1..].split(':').filter_map(|p| p.parse().ok()).collect();
            let secs = match digits[..] {
                [h] if off.len() <= 3 => h * 3600,
                [h] => (h / 100) * 3600 + (h % 100) * 60,
                [h, m] => h * 3600 + m * 60,
                _ => return Err(format!("unknown time zone {s:?}")),
            };
            let secs = if sign == '-' { -secs } else { secs };
            return chrono::FixedOffset::east_opt(secs)
                .map(Zone::Fixed)
                .ok_or_else(|| format!("time zone offset {s:?} is out of range"));
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("unknown time zone {s:?} (use UTC, +01:00 or a name like Europe/Berlin)")
        })
    }
}

/// Every function of this module.
pub(super) fn all() -> Vec<Arc<dyn Udf>> {
    vec![
        Arc::new(ToString::new("TIMESTAMPTOSTRING", T::BigInt)),
        Arc::new(ToString::new("FORMAT_TIMESTAMP", T::Timestamp)),
        Arc::new(FromString::new("STRINGTOTIMESTAMP", false)),
        Arc::new(FromString::new("PARSE_TIMESTAMP", true)),
        Arc::new(UnixTimestamp::new()),
        Arc::new(FromUnixTime::new()),
    ]
}

/// A constant pattern/zone argument, parsed once per batch.
fn constant<R>(
    name: &str,
    v: Option<&ColumnarValue>,
    what: &str,
    parse: impl Fn(&str) -> Result<R, String>,
    default: R,
) -> DfResult<Option<R>> {
    match v {
        None => Ok(Some(default)),
        Some(v) => match scalar_str(v) {
            Some(Some(s)) => parse(s).map(Some).map_err(|e| exec(format!("{name}: {e}"))),
            Some(None) => Ok(None),
            None => fail(name, format!("the {what} must be a constant")),
        },
    }
}

/// `TIMESTAMPTOSTRING(ms, pattern[, zone])` / `FORMAT_TIMESTAMP(ts, pattern[, zone])`.
#[derive(Debug)]
struct ToString {
    doc: FunctionDoc,
}

impl ToString {
    fn new(name: &'static str, input: T) -> Self {
        let arg = if input == T::BigInt {
            "epochMilli"
        } else {
            "timestamp"
        };
        ToString {
            doc: FunctionDoc {
                name,
                category: "DATE / TIME",
                description: "Formats a time with a Java DateTimeFormatter pattern (e.g. 'yyyy-MM-dd HH:mm:ss.SSS'), in UTC or the given zone.",
                variants: vec![
                    Variant::new(
                        &[(arg, input), ("formatPattern", T::String)],
                        "VARCHAR",
                        "in UTC",
                    ),
                    Variant::new(
                        &[
                            (arg, input),
                            ("formatPattern", T::String),
                            ("timeZone", T::String),
                        ],
                        "VARCHAR",
                        "in a zone",
                    ),
                ],
            },
        }
    }
}

impl Udf for ToString {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let name = self.doc.name;
        let input = array(&args[0], rows)?;
        if input.null_count() == rows {
            // NULL in, NULL out, whatever the pattern and zone (as in ksqlDB).
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        }
        let dummy = JavaFormat {
            strftime: String::new(),
            has_zone: false,
            has_time: false,
        };
        let (Some(fmt), Some(zone)) = (
            constant(name, args.get(1), "pattern", JavaFormat::parse, dummy)?,
            constant(name, args.get(2), "time zone", Zone::parse, Zone::Utc)?,
        ) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let ms: Vec<Option<i64>> = match input.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => input
                .as_primitive::<TimestampMillisecondType>()
                .iter()
                .collect(),
            _ => input.as_primitive::<Int64Type>().iter().collect(),
        };
        let mut out = StringBuilder::with_capacity(rows, rows * fmt.strftime.len());
        for v in ms {
            match v {
                None => out.append_null(),
                Some(ms) => match fmt.format(ms, &zone) {
                    Some(s) => out.append_value(s),
                    None => return fail(name, format!("{ms} is out of the range of dates")),
                },
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `STRINGTOTIMESTAMP(str, pattern[, zone])` (BIGINT ms) / `PARSE_TIMESTAMP` (TIMESTAMP).
#[derive(Debug)]
struct FromString {
    doc: FunctionDoc,
    timestamp: bool,
}

impl FromString {
    fn new(name: &'static str, timestamp: bool) -> Self {
        let returns = if timestamp { "TIMESTAMP" } else { "BIGINT" };
        FromString {
            doc: FunctionDoc {
                name,
                category: "DATE / TIME",
                description: "Parses a string with a Java DateTimeFormatter pattern; a pattern without a zone is read in UTC or the given zone.",
                variants: vec![
                    Variant::new(
                        &[
                            ("formattedTimestamp", T::String),
                            ("formatPattern", T::String),
                        ],
                        returns,
                        "in UTC",
                    ),
                    Variant::new(
                        &[
                            ("formattedTimestamp", T::String),
                            ("formatPattern", T::String),
                            ("timeZone", T::String),
                        ],
                        returns,
                        "in a zone",
                    ),
                ],
            },
            timestamp,
        }
    }
}

impl Udf for FromString {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(if self.timestamp {
            DataType::Timestamp(TimeUnit::Millisecond, None)
        } else {
            DataType::Int64
        })
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let name = self.doc.name;
        let null = || {
            ColumnarValue::Scalar(if self.timestamp {
                ScalarValue::TimestampMillisecond(None, None)
            } else {
                ScalarValue::Int64(None)
            })
        };
        let input = array(&args[0], rows)?;
        if input.null_count() == rows {
            // NULL in, NULL out, whatever the pattern and zone (as in ksqlDB).
            return Ok(null());
        }
        let dummy = JavaFormat {
            strftime: String::new(),
            has_zone: false,
            has_time: false,
        };
        let (Some(fmt), Some(zone)) = (
            constant(name, args.get(1), "pattern", JavaFormat::parse, dummy)?,
            constant(name, args.get(2), "time zone", Zone::parse, Zone::Utc)?,
        ) else {
            return Ok(null());
        };
        let input = input.as_string::<i32>();
        let mut values = Vec::with_capacity(rows);
        for i in 0..rows {
            values.push(if input.is_null(i) {
                None
            } else {
                Some(
                    fmt.parse_ms(input.value(i), &zone)
                        .map_err(|e| exec(format!("{name}: {e}")))?,
                )
            });
        }
        Ok(ColumnarValue::Array(if self.timestamp {
            let mut b = TimestampMillisecondBuilder::with_capacity(rows);
            b.extend(values);
            Arc::new(b.finish())
        } else {
            let mut b = Int64Builder::with_capacity(rows);
            b.extend(values);
            Arc::new(b.finish())
        }))
    }
}

/// `UNIX_TIMESTAMP([ts])`: now, or a timestamp, as epoch milliseconds.
#[derive(Debug)]
struct UnixTimestamp {
    doc: FunctionDoc,
}

impl UnixTimestamp {
    fn new() -> Self {
        UnixTimestamp {
            doc: FunctionDoc {
                name: "UNIX_TIMESTAMP",
                category: "DATE / TIME",
                description: "Epoch milliseconds: of now, or of the given timestamp.",
                variants: vec![
                    Variant::new(&[], "BIGINT", "now"),
                    Variant::new(&[("timestamp", T::Timestamp)], "BIGINT", "of a timestamp"),
                ],
            },
        }
    }
}

impl Udf for UnixTimestamp {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn volatile(&self) -> bool {
        true
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        match args.first() {
            None => Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(
                Utc::now().timestamp_millis(),
            )))),
            Some(a) => {
                let a = array(a, rows)?;
                let t = a.as_primitive::<TimestampMillisecondType>();
                let mut b = Int64Builder::with_capacity(rows);
                b.extend(t.iter());
                Ok(ColumnarValue::Array(Arc::new(b.finish())))
            }
        }
    }
}

/// `FROM_UNIXTIME(ms)`: a TIMESTAMP.
#[derive(Debug)]
struct FromUnixTime {
    doc: FunctionDoc,
}

impl FromUnixTime {
    fn new() -> Self {
        FromUnixTime {
            doc: FunctionDoc {
                name: "FROM_UNIXTIME",
                category: "DATE / TIME",
                description: "The TIMESTAMP of epoch milliseconds.",
                variants: vec![Variant::new(&[("epochMilli", T::BigInt)], "TIMESTAMP", "")],
            },
        }
    }
}

impl Udf for FromUnixTime {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let a = array(&args[0], rows)?;
        let mut b = TimestampMillisecondBuilder::with_capacity(rows);
        b.extend(a.as_primitive::<Int64Type>().iter());
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_patterns_format_and_parse() {
        let f = JavaFormat::parse("yyyy-MM-dd'T'HH:mm:ss.SSS").unwrap();
        // 2026-12-03T10:15:30.123Z
        let ms = 1_796_292_930_123;
        assert_eq!(f.format(ms, &Zone::Utc).unwrap(), "2026-12-03T10:15:30.123");
        assert_eq!(
            f.parse_ms("2026-12-03T10:15:30.123", &Zone::Utc).unwrap(),
            ms
        );
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(f.format(ms, &berlin).unwrap(), "2026-12-03T11:15:30.123");
        assert_eq!(f.parse_ms("2026-12-03T11:15:30.123", &berlin).unwrap(), ms);
        assert_eq!(
            f.format(ms, &Zone::parse("+05:30").unwrap()).unwrap(),
            "2026-12-03T15:45:30.123"
        );
        let d = JavaFormat::parse("yyyy-MM-dd").unwrap();
        assert_eq!(d.parse_ms("1970-01-02", &Zone::Utc).unwrap(), 86_400_000);
        let z = JavaFormat::parse("yyyy-MM-dd HH:mm:ssX").unwrap();
        assert_eq!(
            z.parse_ms("1970-01-01 01:00:00+01:00", &Zone::Utc).unwrap(),
            0
        );
        assert!(
            JavaFormat::parse("yyyy-MM-dd Q")
                .unwrap_err()
                .contains("'Q'")
        );
        assert!(
            Zone::parse("Mars/Olympus")
                .unwrap_err()
                .contains("unknown time zone")
        );
        assert!(
            f.parse_ms("yesterday", &Zone::Utc)
                .unwrap_err()
                .contains("cannot parse")
        );
    }
}
