//! Tests of the codecs through their public API: every coercion and error message, atomic
//! rows, and property tests (round trips through every format, apache-avro as the reference
//! writer and reader, garbage and truncations into every decoder).

use crate::*;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType,
    TimestampMillisecondType,
};
use arrow_array::{Array, ArrayRef, Float32Array, Int8Array, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use proptest::prelude::*;
use std::sync::Arc;

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}
fn f(name: &str, dt: DataType) -> Field {
    Field::new(name, dt, true)
}
fn list(dt: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", dt, true)))
}
fn map(v: DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", v, true),
            ])),
            false,
        )),
        false,
    )
}
fn st(fields: Vec<Field>) -> DataType {
    DataType::Struct(Fields::from(fields))
}
const TS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);
const TIME: DataType = DataType::Time32(TimeUnit::Millisecond);

fn json_rows(s: &SchemaRef, rows: &[&str]) -> RecordBatch {
    let mut d = JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap();
    for r in rows {
        d.append(r.as_bytes()).unwrap();
    }
    d.finish()
}
fn json_err(s: &SchemaRef, row: &str) -> String {
    let mut d = JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap();
    d.append(row.as_bytes()).unwrap_err().to_string()
}
fn encode(e: &mut dyn RowEncoder, b: &RecordBatch) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    e.encode(b, &mut out, &mut ends).unwrap();
    let mut rows = Vec::new();
    let mut s = 0;
    for e in ends {
        rows.push(out[s..e].to_vec());
        s = e;
    }
    rows
}
fn json_text(b: &RecordBatch) -> Vec<String> {
    encode(&mut JsonEncoder::default(), b)
        .into_iter()
        .map(|r| String::from_utf8(r).unwrap())
        .collect()
}
fn i64s(a: &ArrayRef) -> Vec<Option<i64>> {
    a.as_primitive::<Int64Type>().iter().collect()
}

// ---- JSON decoding ---------------------------------------------------------------------

#[test]
fn json_scalar_coercions() {
    let s = schema(vec![
        f("B", DataType::Boolean),
        f("I", DataType::Int32),
        f("L", DataType::Int64),
        f("D", DataType::Float64),
        f("DEC", DataType::Decimal128(6, 2)),
        f("S", DataType::Utf8),
        f("BY", DataType::Binary),
        f("TS", TS),
        f("DT", DataType::Date32),
        f("TM", TIME),
    ]);
    let b = json_rows(
        &s,
        &[
            r#"{"b": true, "i": 7, "l": -9223372036854775808, "d": 1.5, "dec": 12.3, "s": "x", "by": "AAEC", "ts": 1000, "dt": 3, "tm": 5}"#,
            r#"{"b": "FALSE", "i": "42", "l": "12", "d": "2.5e1", "dec": "-0.05", "s": 12.50, "by": "", "ts": "2026-12-03T10:15:30.123Z", "dt": "2026-12-03", "tm": "10:15:30.123"}"#,
            r#"{"B": null, "s": true, "ts": "2026-12-03T10:15:30+01:00", "tm": "10:15:30"}"#,
            r#"{"s": {"a" : [1, 2 ,{"b":null}]}, "d": 3, "ts": "2026-12-03T10:15:30"}"#,
        ],
    );
    assert_eq!(b.num_rows(), 4);
    let c = |n: &str| b.column_by_name(n).unwrap().clone();
    assert_eq!(
        c("B").as_boolean().iter().collect::<Vec<_>>(),
        [Some(true), Some(false), None, None]
    );
    assert_eq!(
        c("I")
            .as_primitive::<Int32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(7), Some(42), None, None]
    );
    assert_eq!(i64s(&c("L")), [Some(i64::MIN), Some(12), None, None]);
    assert_eq!(
        c("D")
            .as_primitive::<Float64Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(1.5), Some(25.0), None, Some(3.0)]
    );
    assert_eq!(
        c("DEC")
            .as_primitive::<Decimal128Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(1230), Some(-5), None, None]
    );
    assert_eq!(
        c("S").as_string::<i32>().iter().collect::<Vec<_>>(),
        [
            Some("x"),
            Some("12.50"),
            Some("true"),
            Some(r#"{"a":[1,2,{"b":null}]}"#)
        ]
    );
    assert_eq!(c("BY").as_binary::<i32>().value(0), [0u8, 1, 2]);
    assert_eq!(c("BY").as_binary::<i32>().value(1), b"");
    let base = 20_790 * 86_400_000i64 + 36_930_000;
    assert_eq!(
        c("TS")
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect::<Vec<_>>(),
        [
            Some(1000),
            Some(base + 123),
            Some(base - 3_600_000),
            Some(base)
        ]
    );
    assert_eq!(
        c("DT")
            .as_primitive::<Date32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(3), Some(20_790), None, None]
    );
    assert_eq!(
        c("TM")
            .as_primitive::<Time32MillisecondType>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(5), Some(36_930_123), Some(36_930_000), None]
    );
}

#[test]
fn json_string_escapes() {
    let s = schema(vec![f("S", DataType::Utf8), f("K", DataType::Int32)]);
    let b = json_rows(
        &s,
        &[
            r#"{"S": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00 ü"}"#,
            r#"{"S\u0020": 1, "\u004b": 5}"#,
        ],
    );
    let col = b.column(0).as_string::<i32>();
    assert_eq!(col.value(0), "a\"b\\c/d\n\té😀 ü");
    assert!(col.is_null(1));
    assert_eq!(b.column(1).as_primitive::<Int32Type>().value(1), 5);
    assert_eq!(
        json_err(&s, r#"{"S": "\ud83d x"}"#),
        "S: invalid JSON at byte 7: unpaired surrogate in \\u escape"
    );
    assert_eq!(
        json_err(&s, "{\"S\": \"a\u{1}\"}"),
        "S: invalid JSON at byte 8: control character in string"
    );
}

#[test]
fn json_strings_with_a_special_byte_at_every_position() {
    // The scanner skips plain bytes eight at a time: a quote, backslash escape or control
    // character must be seen wherever it falls in a word, and text around it kept.
    let s = schema(vec![f("s", DataType::Utf8)]);
    for len in 0..40 {
        for at in 0..len {
            let mut body: Vec<String> = (0..len)
                .map(|i| ((b'a' + (i % 26) as u8) as char).to_string())
                .collect();
            let expected_char;
            match at % 4 {
                0 => {
                    body[at] = "\\\"".into();
                    expected_char = "\"";
                }
                1 => {
                    body[at] = "\\\\".into();
                    expected_char = "\\";
                }
                2 => {
                    body[at] = "\\u00e9".into();
                    expected_char = "é";
                }
                _ => {
                    body[at] = "é".into();
                    expected_char = "é";
                }
            }
            let row = format!("{{\"s\":\"{}\"}}", body.concat());
            let b = json_rows(&s, &[&row]);
            let mut want: Vec<String> = (0..len)
                .map(|i| ((b'a' + (i % 26) as u8) as char).to_string())
                .collect();
            want[at] = expected_char.into();
            assert_eq!(
                b.column(0).as_string::<i32>().value(0),
                want.concat(),
                "{row}"
            );
            // A raw control character there is refused.
            let mut raw = body.clone();
            raw[at] = "\u{1}".into();
            let bad = format!("{{\"s\":\"{}\"}}", raw.concat());
            assert!(json_err(&s, &bad).contains("control character"), "{bad:?}");
        }
        // Unterminated at any length.
        let open = format!("{{\"s\":\"{}", "x".repeat(len));
        assert!(json_err(&s, &open).contains("unterminated"), "{open}");
    }
}

#[test]
fn json_field_names_through_the_shape_of_the_last_row() {
    // Rows change shape under the decoder: a name that is a prefix of another, reordered
    // fields, an escaped name, another case, unknown and repeated fields.
    let s = schema(vec![
        f("a", DataType::Int64),
        f("b", DataType::Int64),
        f("ab", DataType::Int64),
    ]);
    let b = json_rows(
        &s,
        &[
            r#"{"a":1,"b":2,"ab":3}"#,
            r#"{"ab":4,"a":5}"#,
            r#"{"a":6,"b":7,"ab":8}"#,
            r#"{"a\u0062":9,"b":10}"#,
            r#"{"A":11,"zz":{"a":99},"b":12}"#,
            r#"{"a":13,"a":14}"#,
            r#"{"a":15,"b":16,"ab":17}"#,
        ],
    );
    assert_eq!(
        i64s(b.column(0)),
        [
            Some(1),
            Some(5),
            Some(6),
            None,
            Some(11),
            Some(14),
            Some(15)
        ]
    );
    assert_eq!(
        i64s(b.column(1)),
        [Some(2), None, Some(7), Some(10), Some(12), None, Some(16)]
    );
    assert_eq!(
        i64s(b.column(2)),
        [Some(3), Some(4), Some(8), Some(9), None, None, Some(17)]
    );
    // A remembered name followed by something else than the closing quote is not taken.
    // The same names with whitespace around the colon, after the compact shape is known.
    let spaced = json_rows(
        &s,
        &[r#"{"a":1,"b":2}"#, r#"{"a" : 3, "b"	:4}"#, "{\"a\"\n:5}"],
    );
    assert_eq!(i64s(spaced.column(0)), [Some(1), Some(3), Some(5)]);
    assert_eq!(i64s(spaced.column(1)), [Some(2), Some(4), None]);
    let mut d = JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap();
    d.append(br#"{"a":1}"#).unwrap();
    assert!(d.append(br#"{"a:2}"#).is_err());
    assert!(d.append(br#"{"a" 2}"#).is_err());
    assert!(d.append(br#"{"a"2}"#).is_err());
}

#[test]
fn json_field_matching() {
    // Exact first, then case-insensitive; unknown fields skipped, nested ones too; a repeated
    // field replaces the earlier value.
    let s = schema(vec![
        f("ID", DataType::Int64),
        f("id", DataType::Int64),
        f("NAME", DataType::Utf8),
    ]);
    let b = json_rows(
        &s,
        &[
            r#"{"Id": 1, "id": 2, "x": {"deep": [1, {"a": [true, null, "s"]}]}, "name": "n"}"#,
            r#"{"ID": 3, "NAME": "a", "name": "b", "junk": [[[]]]}"#,
        ],
    );
    assert_eq!(i64s(b.column(0)), [Some(1), Some(3)]);
    assert_eq!(i64s(b.column(1)), [Some(2), None]);
    assert_eq!(b.column(2).as_string::<i32>().value(1), "b");
}

#[test]
fn json_nested() {
    let s = schema(vec![
        f(
            "LOC",
            st(vec![
                f("LAT", DataType::Float64),
                f("LON", DataType::Float64),
            ]),
        ),
        f("TAGS", list(DataType::Utf8)),
        f("M", map(list(DataType::Int32))),
    ]);
    let b = json_rows(
        &s,
        &[
            r#"{"loc": {"lat": 1.5, "lon": 2}, "tags": ["a", null, "b"], "m": {"x": [1, 2], "y": null}}"#,
            r#"{"loc": {"LON": 3}, "tags": [], "m": {}}"#,
            r#"{"loc": null, "tags": null}"#,
            "null",
        ],
    );
    assert_eq!(
        json_text(&b),
        [
            r#"{"LOC":{"LAT":1.5,"LON":2.0},"TAGS":["a",null,"b"],"M":{"x":[1,2],"y":null}}"#,
            r#"{"LOC":{"LAT":null,"LON":3.0},"TAGS":[],"M":{}}"#,
            r#"{"LOC":null,"TAGS":null,"M":null}"#,
            r#"{"LOC":null,"TAGS":null,"M":null}"#,
        ]
    );
}

#[test]
fn json_errors_name_the_column_and_what() {
    let s = schema(vec![
        f("LOC", st(vec![f("LAT", DataType::Float64)])),
        f("RPM", DataType::Int32),
        f("DEC", DataType::Decimal128(4, 2)),
        f("TS", TS),
        f("BY", DataType::Binary),
    ]);
    assert_eq!(
        json_err(&s, r#"{"loc": {"lat": "fast"}}"#),
        r#"LOC->LAT: cannot convert "fast" to DOUBLE"#
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": 1.5}"#),
        "RPM: cannot convert 1.5 to INT"
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": 1e3}"#),
        "RPM: cannot convert 1e3 to INT"
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": 2147483648}"#),
        "RPM: cannot convert 2147483648 to INT"
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": "x1"}"#),
        r#"RPM: cannot convert "x1" to INT"#
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": [1]}"#),
        "RPM: cannot convert an array to INT"
    );
    assert_eq!(
        json_err(&s, r#"{"dec": 123.4}"#),
        "DEC: cannot convert 123.4 to DECIMAL(4, 2)"
    );
    assert_eq!(
        json_err(&s, r#"{"dec": 1.234}"#),
        "DEC: cannot convert 1.234 to DECIMAL(4, 2)"
    );
    assert_eq!(
        json_err(&s, r#"{"ts": "2026-13-01"}"#),
        r#"TS: cannot convert "2026-13-01" to TIMESTAMP"#
    );
    assert_eq!(
        json_err(&s, r#"{"by": "!!"}"#),
        r#"BY: cannot convert "!!" to BYTES"#
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": 1, "loc" 5}"#),
        "invalid JSON at byte 17: expected ':'"
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": 1 "x": 2}"#),
        "invalid JSON at byte 10: expected ',' or '}'"
    );
    assert_eq!(
        json_err(&s, r#"[1]"#),
        "invalid JSON at byte 0: expected a JSON object"
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": 1} x"#),
        "invalid JSON at byte 11: expected the end of the value"
    );
    assert_eq!(
        json_err(&s, r#"{"rpm": 1"#),
        "invalid JSON at byte 9: unexpected end, expected ',' or '}'"
    );
    let deep = format!(r#"{{"x": {}{}}}"#, "[".repeat(200), "]".repeat(200));
    assert_eq!(
        json_err(&s, &deep),
        "invalid JSON at byte 134: nested deeper than 128 levels"
    );
    let mut d = JsonDecoder::new(s, JsonOptions::default()).unwrap();
    assert_eq!(
        d.append(b"{\"rpm\": \xff}").unwrap_err().to_string(),
        "invalid UTF-8 at byte 8"
    );
}

#[test]
fn json_rows_are_atomic() {
    let s = schema(vec![
        f("A", DataType::Utf8),
        f("L", list(DataType::Int64)),
        f(
            "ST",
            st(vec![f("X", DataType::Utf8), f("Y", DataType::Int32)]),
        ),
        f("M", map(DataType::Utf8)),
    ]);
    let mut d = JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap();
    d.append(br#"{"a": "one", "l": [1, 2], "st": {"x": "p", "y": 1}, "m": {"k": "v"}}"#)
        .unwrap();
    // Fails late: after strings, list items, struct children and map entries were written.
    let bad = br#"{"a": "zzz", "l": [3, 4], "m": {"k2": "v2"}, "st": {"x": "q", "y": "no"}}"#;
    assert_eq!(
        d.append(bad).unwrap_err().to_string(),
        r#"ST->Y: cannot convert "no" to INT"#
    );
    assert_eq!(d.len(), 1);
    d.append(br#"{"a": "two", "l": [5], "st": {"x": "r"}, "m": {}}"#)
        .unwrap();
    let b = d.finish();
    assert_eq!(d.len(), 0);
    assert_eq!(
        json_text(&b),
        [
            r#"{"A":"one","L":[1,2],"ST":{"X":"p","Y":1},"M":{"k":"v"}}"#,
            r#"{"A":"two","L":[5],"ST":{"X":"r","Y":null},"M":{}}"#,
        ]
    );
    // The decoder is reusable after finish.
    d.append(br#"{"a": "three"}"#).unwrap();
    assert_eq!(d.finish().num_rows(), 1);
}

#[test]
fn json_unwrapped_single_value() {
    let s = schema(vec![f("V", DataType::Int64)]);
    let opts = JsonOptions {
        wrap_single_value: false,
    };
    let mut d = JsonDecoder::new(s.clone(), opts).unwrap();
    d.append(b" 42 ").unwrap();
    d.append(b"null").unwrap();
    d.append(b"\"7\"").unwrap();
    assert!(d.append(br#"{"V": 1}"#).is_err());
    let b = d.finish();
    assert_eq!(i64s(b.column(0)), [Some(42), None, Some(7)]);
    let rows = encode(&mut JsonEncoder::new(opts), &b);
    assert_eq!(rows, [b"42".to_vec(), b"null".to_vec(), b"7".to_vec()]);
    // Wrapped (the default), the same schema wants an object.
    assert_eq!(
        json_err(&s, "42"),
        "invalid JSON at byte 0: expected a JSON object"
    );
}

#[test]
fn unsupported_types_name_the_column() {
    let s = schema(vec![f("OK", DataType::Int32), f("BAD", DataType::UInt16)]);
    let e = JsonDecoder::new(s, JsonOptions::default()).err().unwrap();
    assert_eq!(
        e.to_string(),
        "column BAD: unsupported type UInt16 for JSON"
    );
    let s = schema(vec![f(
        "LOC",
        st(vec![f("T", DataType::Timestamp(TimeUnit::Second, None))]),
    )]);
    let e = JsonDecoder::new(s, JsonOptions::default()).err().unwrap();
    assert_eq!(
        e.to_string(),
        "column LOC->T: unsupported type Timestamp(s) for JSON"
    );
    let s = schema(vec![f("L", list(DataType::Int32))]);
    let e = DelimitedDecoder::new(s.clone(), b',').err().unwrap();
    assert!(
        e.to_string().starts_with("column L: unsupported type List"),
        "{e}"
    );
    let e = KafkaDecoder::new(s).err().unwrap();
    assert!(
        e.to_string().starts_with("column L: unsupported type"),
        "{e}"
    );
    let e = KafkaDecoder::new(schema(vec![
        f("A", DataType::Int32),
        f("B", DataType::Int32),
    ]))
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "the KAFKA format has exactly one column, the schema has 2"
    );
}

// ---- JSON encoding ---------------------------------------------------------------------

#[test]
fn json_encoder_formats() {
    let s = schema(vec![
        f("D", DataType::Float64),
        f("DEC", DataType::Decimal128(5, 2)),
        f("S", DataType::Utf8),
        f("BY", DataType::Binary),
    ]);
    let b = json_rows(
        &s,
        &[
            r#"{"d": 1, "dec": 1.5, "s": "q\"\\\u0001\u001fé", "by": "AAEC"}"#,
            r#"{"d": 0.1, "dec": -0.05}"#,
            r#"{"d": 1e300, "dec": 0}"#,
        ],
    );
    assert_eq!(
        json_text(&b),
        [
            r#"{"D":1.0,"DEC":1.50,"S":"q\"\\\u0001\u001fé","BY":"AAEC"}"#,
            r#"{"D":0.1,"DEC":-0.05,"S":null,"BY":null}"#,
            r#"{"D":1e300,"DEC":0.00,"S":null,"BY":null}"#,
        ]
    );
    // NaN and infinities are null; wider SQL expression types are accepted.
    let b = RecordBatch::try_from_iter(vec![
        (
            "N",
            Arc::new(arrow_array::Float64Array::from(vec![
                f64::NAN,
                f64::INFINITY,
            ])) as ArrayRef,
        ),
        (
            "F",
            Arc::new(Float32Array::from(vec![0.5, 2.0])) as ArrayRef,
        ),
        ("I8", Arc::new(Int8Array::from(vec![-1, 2])) as ArrayRef),
        (
            "U",
            Arc::new(UInt64Array::from(vec![u64::MAX, 0])) as ArrayRef,
        ),
        (
            "TS",
            Arc::new(arrow_array::TimestampMicrosecondArray::from(vec![
                1_500_999, -1,
            ])) as ArrayRef,
        ),
        (
            "LS",
            Arc::new(arrow_array::LargeStringArray::from(vec!["a", "b"])) as ArrayRef,
        ),
        (
            "SV",
            Arc::new(arrow_array::StringViewArray::from(vec!["c", "d"])) as ArrayRef,
        ),
    ])
    .unwrap();
    assert_eq!(
        json_text(&b),
        [
            r#"{"N":null,"F":0.5,"I8":-1,"U":18446744073709551615,"TS":1500,"LS":"a","SV":"c"}"#,
            r#"{"N":null,"F":2.0,"I8":2,"U":0,"TS":-1,"LS":"b","SV":"d"}"#,
        ]
    );
    // A sliced batch writes only its rows.
    let b = json_rows(
        &schema(vec![f("L", list(DataType::Int32)), f("S", DataType::Utf8)]),
        &[
            r#"{"l": [1], "s": "a"}"#,
            r#"{"l": [2, 3], "s": "b"}"#,
            r#"{"l": [4]}"#,
        ],
    );
    assert_eq!(
        json_text(&b.slice(1, 2)),
        [r#"{"L":[2,3],"S":"b"}"#, r#"{"L":[4],"S":null}"#]
    );
}

// ---- DELIMITED -------------------------------------------------------------------------

#[test]
fn delimited_decoding() {
    let s = schema(vec![
        f("S", DataType::Utf8),
        f("I", DataType::Int32),
        f("D", DataType::Float64),
        f("B", DataType::Boolean),
        f("TS", TS),
        f("DEC", DataType::Decimal128(5, 1)),
    ]);
    let mut d = DelimitedDecoder::new(s.clone(), b',').unwrap();
    d.append(b"\"a,\"\"b\"\"\",1,2.5,TRUE,2026-12-03T10:15:30Z,1.5\r\n")
        .unwrap();
    d.append(b",,,,1000,").unwrap();
    d.append(b"\"\", 7 ,1e2,false,5,-3").unwrap();
    assert_eq!(
        d.append(b"x,1,2").unwrap_err().to_string(),
        "expected 6 fields, found 3"
    );
    assert_eq!(
        d.append(b"x,fast,2,true,1,1").unwrap_err().to_string(),
        r#"I: cannot convert "fast" to INT"#
    );
    assert_eq!(
        d.append(b"\"x,1,2,true,1,1").unwrap_err().to_string(),
        "invalid DELIMITED value: quote opened at byte 0 is not closed"
    );
    assert_eq!(
        d.append(b"\"x\"y,1,2,true,1,1").unwrap_err().to_string(),
        "invalid DELIMITED value at byte 3: expected the delimiter after a closing quote"
    );
    let b = d.finish();
    assert_eq!(
        b.column(0).as_string::<i32>().iter().collect::<Vec<_>>(),
        [Some("a,\"b\""), None, Some("")]
    );
    assert_eq!(
        b.column(1)
            .as_primitive::<Int32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(1), None, Some(7)]
    );
    assert_eq!(
        b.column(4)
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(1_796_292_930_000), Some(1000), Some(5)]
    );
    let rows = encode(&mut DelimitedEncoder::default(), &b);
    assert_eq!(
        rows,
        [
            b"\"a,\"\"b\"\"\",1,2.5,true,1796292930000,1.5".to_vec(),
            b",,,,1000,".to_vec(),
            b"\"\",7,100.0,false,5,-3.0".to_vec(),
        ]
    );
    let mut tabs = DelimitedDecoder::new(s, b'\t').unwrap();
    tabs.append(b"a,b\t1\t\t\t\t").unwrap();
    assert_eq!(tabs.finish().column(0).as_string::<i32>().value(0), "a,b");
}

// ---- KAFKA -----------------------------------------------------------------------------

#[test]
fn kafka_format() {
    let one = |dt: DataType| schema(vec![f("V", dt)]);
    let mut d = KafkaDecoder::new(one(DataType::Int32)).unwrap();
    d.append(&(-5i32).to_be_bytes()).unwrap();
    assert_eq!(
        d.append(&[1, 2, 3]).unwrap_err().to_string(),
        "V: a KAFKA-format INT is 4 bytes, the value has 3"
    );
    d.append_null();
    let b = d.finish();
    assert_eq!(
        b.column(0)
            .as_primitive::<Int32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(-5), None]
    );
    assert!(
        KafkaEncoder::new()
            .encode(&b, &mut Vec::new(), &mut Vec::new())
            .is_err()
    );
    assert_eq!(
        encode(&mut KafkaEncoder::new(), &b.slice(0, 1)),
        [(-5i32).to_be_bytes().to_vec()]
    );
    for (dt, value) in [
        (DataType::Int64, 1234567890123i64.to_be_bytes().to_vec()),
        (DataType::Float64, 2.5f64.to_be_bytes().to_vec()),
        (DataType::Utf8, "héllo".as_bytes().to_vec()),
        (DataType::Binary, vec![0, 255, 7]),
    ] {
        let mut d = KafkaDecoder::new(one(dt)).unwrap();
        d.append(&value).unwrap();
        let b = d.finish();
        assert_eq!(encode(&mut KafkaEncoder::new(), &b), [value]);
    }
    let mut d = KafkaDecoder::new(one(DataType::Int64)).unwrap();
    assert_eq!(
        d.append(&[0; 9]).unwrap_err().to_string(),
        "V: a KAFKA-format BIGINT is 8 bytes, the value has 9"
    );
    let mut d = KafkaDecoder::new(one(DataType::Utf8)).unwrap();
    assert_eq!(
        d.append(b"a\xffb").unwrap_err().to_string(),
        "V: invalid UTF-8 at byte 1"
    );
}

// ---- Avro ------------------------------------------------------------------------------

fn avro_datum(
    w: &apache_avro::Schema,
    v: apache_avro::types::Value,
) -> Result<Vec<u8>, apache_avro::Error> {
    apache_avro::writer::datum::GenericDatumWriter::builder(w)
        .build()?
        .write_value_to_vec(v)
}

fn avro_read(w: &apache_avro::Schema, r: &mut &[u8]) {
    apache_avro::reader::datum::GenericDatumReader::builder(w)
        .build()
        .unwrap()
        .read_value(r)
        .unwrap();
}

type Decoders = Vec<(Box<dyn RowDecoder>, Vec<Vec<u8>>)>;

fn avro(s: &str) -> apache_avro::Schema {
    apache_avro::Schema::parse_str(s).unwrap()
}

const WRITER: &str = r#"{"type": "record", "name": "Car", "namespace": "fw", "fields": [
    {"name": "vin", "type": "string"},
    {"name": "skip_me", "type": {"type": "map", "values": {"type": "array", "items":
        {"type": "record", "name": "Junk", "fields": [{"name": "j", "type": ["null", "long", "string"]},
                                                      {"name": "f", "type": {"type": "fixed", "name": "F3", "size": 3}}]}}}},
    {"name": "rpm", "type": "int"},
    {"name": "speed", "type": ["float", "null"]},
    {"name": "gear", "type": {"type": "enum", "name": "Gear", "symbols": ["P", "R", "N", "D"]}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 1}},
    {"name": "raw", "type": {"type": "fixed", "name": "Raw", "size": 2}},
    {"name": "loc", "type": ["null", {"type": "record", "name": "Loc", "fields": [
        {"name": "lat", "type": "double"}, {"name": "extra", "type": "Junk"}]}]},
    {"name": "dtc", "type": {"type": "array", "items": "string"}}
]}"#;

fn car_schema() -> SchemaRef {
    schema(vec![
        f("VIN", DataType::Utf8),
        f("RPM", DataType::Int64),
        f("SPEED", DataType::Float64),
        f("GEAR", DataType::Utf8),
        f("TS", TS),
        f("DAY", DataType::Date32),
        f("PRICE", DataType::Decimal128(8, 2)),
        f("RAW", DataType::Binary),
        f(
            "LOC",
            st(vec![
                f("LAT", DataType::Float64),
                f("LON", DataType::Float64),
            ]),
        ),
        f("DTC", list(DataType::Utf8)),
        f("MISSING", DataType::Int32),
    ])
}

fn car_value(vin: &str, speed: Option<f32>) -> apache_avro::types::Value {
    use apache_avro::types::Value as V;
    let junk = V::Record(vec![
        ("j".into(), V::Union(2, Box::new(V::String("zz".into())))),
        ("f".into(), V::Fixed(3, vec![1, 2, 3])),
    ]);
    V::Record(vec![
        ("vin".into(), V::String(vin.into())),
        (
            "skip_me".into(),
            V::Map([("k".to_string(), V::Array(vec![junk.clone(), junk.clone()]))].into()),
        ),
        ("rpm".into(), V::Int(3000)),
        (
            "speed".into(),
            match speed {
                Some(s) => V::Union(0, Box::new(V::Float(s))),
                None => V::Union(1, Box::new(V::Null)),
            },
        ),
        ("gear".into(), V::Enum(3, "D".into())),
        ("ts".into(), V::TimestampMicros(1_700_000_000_123_999)),
        ("day".into(), V::Date(19_000)),
        (
            "price".into(),
            V::Decimal(apache_avro::Decimal::from(vec![0xff, 0x85])),
        ), // -123 → -12.3
        ("raw".into(), V::Fixed(2, vec![9, 8])),
        (
            "loc".into(),
            V::Union(
                1,
                Box::new(V::Record(vec![
                    ("lat".into(), V::Double(48.1)),
                    ("extra".into(), junk),
                ])),
            ),
        ),
        ("dtc".into(), V::Array(vec![V::String("P0300".into())])),
    ])
}

#[test]
fn avro_decodes_apache_avro_datums() {
    let w = avro(WRITER);
    let mut d = AvroDecoder::new(car_schema(), &w).unwrap();
    d.append(&avro_datum(&w, car_value("WVW1", Some(88.5))).unwrap())
        .unwrap();
    d.append(&avro_datum(&w, car_value("WVW2", None)).unwrap())
        .unwrap();
    let b = d.finish();
    assert_eq!(
        json_text(&b),
        [
            r#"{"VIN":"WVW1","RPM":3000,"SPEED":88.5,"GEAR":"D","TS":1700000000123,"DAY":19000,"PRICE":-12.30,"RAW":"CQg=","LOC":{"LAT":48.1,"LON":null},"DTC":["P0300"],"MISSING":null}"#,
            r#"{"VIN":"WVW2","RPM":3000,"SPEED":null,"GEAR":"D","TS":1700000000123,"DAY":19000,"PRICE":-12.30,"RAW":"CQg=","LOC":{"LAT":48.1,"LON":null},"DTC":["P0300"],"MISSING":null}"#,
        ]
    );
}

#[test]
fn avro_negative_block_counts_and_errors() {
    let w = avro(
        r#"{"type": "record", "name": "R", "fields": [
            {"name": "skip", "type": {"type": "array", "items": "long"}},
            {"name": "a", "type": {"type": "array", "items": "int"}},
            {"name": "m", "type": {"type": "map", "values": "string"}}]}"#,
    );
    let s = schema(vec![
        f("A", list(DataType::Int32)),
        f("M", map(DataType::Utf8)),
    ]);
    let mut d = AvroDecoder::new(s, &w).unwrap();
    // skip: one block of -2 items with its byte size (2), then 0; a: blocks 1 and -1; m: -1.
    let datum = [
        3, 2, 2, 4, 0, // skip: count -2, size 2, items 1, 2, end
        2, 6, 1, 2, 8, 0, // a: [3], then count -1 size 1 [4], end
        1, 4, 2, b'k', 2, b'v', 0, // m: count -1, size 4, "k" -> "v", end
    ];
    d.append(&datum).unwrap();
    assert_eq!(json_text(&d.finish()), [r#"{"A":[3,4],"M":{"k":"v"}}"#]);
    // Truncated at every length: an error, nothing appended.
    for n in 0..datum.len() {
        assert!(d.append(&datum[..n]).is_err(), "prefix {n}");
    }
    assert_eq!(d.len(), 0);
    let mut extra = datum.to_vec();
    extra.push(0);
    assert_eq!(
        d.append(&extra).unwrap_err().to_string(),
        "invalid Avro: 1 bytes after the end of the datum"
    );
    // A length beyond the bytes left is refused before anything is allocated.
    assert_eq!(
        d.append(&[0, 0xfe, 0xff, 0xff, 0xff, 0x0f])
            .unwrap_err()
            .to_string(),
        "A: invalid Avro at byte 6: block of 2147483647 items larger than the 0 bytes left"
    );
}

#[test]
fn avro_schema_errors() {
    let w = avro(
        r#"{"type": "record", "name": "R", "fields": [{"name": "u", "type": ["int", "string"]}, {"name": "l", "type": "long"}]}"#,
    );
    let e = AvroDecoder::new(schema(vec![f("U", DataType::Utf8)]), &w)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "column U: the writer's union int, string is not [\"null\", T]"
    );
    let e = AvroDecoder::new(schema(vec![f("L", DataType::Int32)]), &w)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "column L: the writer's long cannot be read as INT"
    );
    // The general union is fine when no column reads it.
    assert!(AvroDecoder::new(schema(vec![f("L", DataType::Int64)]), &w).is_ok());
    let e = arrow_schema_from_avro(&w, true).unwrap_err();
    assert_eq!(
        e.to_string(),
        "column U: no SQL type for the Avro type union"
    );
}

#[test]
fn avro_non_record_writer_is_one_column() {
    let w = avro(r#"["null", "string"]"#);
    let mut d = AvroDecoder::new(schema(vec![f("V", DataType::Utf8)]), &w).unwrap();
    d.append(&[2, 4, b'h', b'i']).unwrap();
    d.append(&[0]).unwrap();
    assert_eq!(
        d.finish()
            .column(0)
            .as_string::<i32>()
            .iter()
            .collect::<Vec<_>>(),
        [Some("hi"), None]
    );
}

#[test]
fn schema_from_avro() {
    assert_eq!(
        arrow_schema_from_avro(&avro(WRITER), true)
            .unwrap_err()
            .to_string(),
        "column SKIP_ME->J: no SQL type for the Avro type union"
    );
    let writer = WRITER.replace(r#"["null", "long", "string"]"#, r#"["long", "null"]"#);
    let got = arrow_schema_from_avro(&avro(&writer), true).unwrap();
    let names: Vec<_> = got.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "VIN", "SKIP_ME", "RPM", "SPEED", "GEAR", "TS", "DAY", "PRICE", "RAW", "LOC", "DTC"
        ]
    );
    assert_eq!(got.field(3).data_type(), &DataType::Float64);
    assert_eq!(got.field(5).data_type(), &TS);
    assert_eq!(got.field(7).data_type(), &DataType::Decimal128(6, 1));
    let DataType::Struct(loc) = got.field(9).data_type() else {
        panic!()
    };
    assert_eq!(loc[0].name(), "LAT");
    assert_eq!(loc[1].name(), "EXTRA");
    let lower = arrow_schema_from_avro(&avro(&writer), false).unwrap();
    assert_eq!(lower.field(0).name(), "vin");
    // The inferred schema decodes the writer's datums.
    // The inferred schema reads the writer's datums; the general union does not fit it.
    assert!(AvroDecoder::new(Arc::new(got.clone()), &avro(&writer)).is_ok());
    assert_eq!(
        AvroDecoder::new(Arc::new(got), &avro(WRITER))
            .err()
            .unwrap()
            .to_string(),
        "column SKIP_ME->J: the writer's union null, long, string is not [\"null\", T]"
    );
    let rec = avro(
        r#"{"type": "record", "name": "N", "fields": [{"name": "next", "type": ["null", "N"]}]}"#,
    );
    assert_eq!(
        arrow_schema_from_avro(&rec, true).unwrap_err().to_string(),
        "column NEXT: recursive type N has no SQL type"
    );
}

#[test]
fn avro_schema_is_ksqldb_style() {
    let s = schema(vec![
        f("ID", DataType::Int64),
        f(
            "LOC",
            st(vec![
                f("LAT", DataType::Float64),
                f("IN", st(vec![f("X", DataType::Int32)])),
            ]),
        ),
        f("TS", TS),
        f("DEC", DataType::Decimal128(4, 2)),
        f("M", map(DataType::Utf8)),
        f("A", list(DataType::Date32)),
    ]);
    let v = avro_schema_for(&s, "KsqlDataSourceSchema", "io.confluent.ksql.avro_schemas").unwrap();
    let expected = serde_json::json!({
        "type": "record", "name": "KsqlDataSourceSchema", "namespace": "io.confluent.ksql.avro_schemas",
        "fields": [
            {"name": "ID", "type": ["null", "long"], "default": null},
            {"name": "LOC", "type": ["null", {"type": "record", "name": "KsqlDataSourceSchema_LOC", "fields": [
                {"name": "LAT", "type": ["null", "double"], "default": null},
                {"name": "IN", "type": ["null", {"type": "record", "name": "KsqlDataSourceSchema_LOC_IN", "fields": [
                    {"name": "X", "type": ["null", "int"], "default": null}]}], "default": null}]}], "default": null},
            {"name": "TS", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null},
            {"name": "DEC", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}], "default": null},
            {"name": "M", "type": ["null", {"type": "map", "values": ["null", "string"]}], "default": null},
            {"name": "A", "type": ["null", {"type": "array", "items": ["null", {"type": "int", "logicalType": "date"}]}], "default": null}
        ]
    });
    assert_eq!(v, expected);
    apache_avro::Schema::parse(&v).unwrap();
}

// ---- property tests --------------------------------------------------------------------

/// A JSON value model the tests write as text.
#[derive(Debug, Clone)]
enum M {
    Null,
    Bool(bool),
    Int(i64),
    Dbl(f64),
    Raw(String),
    Str(String),
    Arr(Vec<M>),
    Obj(Vec<(String, M)>),
}

fn write_m(m: &M, out: &mut String) {
    match m {
        M::Null => out.push_str("null"),
        M::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        M::Int(i) => out.push_str(&i.to_string()),
        M::Dbl(d) => out.push_str(&format!("{d:?}")),
        M::Raw(r) => out.push_str(r),
        M::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
        M::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_m(x, out);
            }
            out.push(']');
        }
        M::Obj(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
                write_m(x, out);
            }
            out.push('}');
        }
    }
}

fn rich_schema() -> SchemaRef {
    schema(vec![
        f("B", DataType::Boolean),
        f("I", DataType::Int32),
        f("L", DataType::Int64),
        f("D", DataType::Float64),
        f("DEC", DataType::Decimal128(12, 3)),
        f("S", DataType::Utf8),
        f("BY", DataType::Binary),
        f("TS", TS),
        f("DT", DataType::Date32),
        f("TM", TIME),
        f("A", list(DataType::Utf8)),
        f("M", map(DataType::Int64)),
        f(
            "ST",
            st(vec![
                f("X", DataType::Int32),
                f("Y", list(DataType::Float64)),
                f("Z", st(vec![f("Q", DataType::Utf8)])),
            ]),
        ),
        f("AS", list(st(vec![f("K", DataType::Utf8)]))),
        f("MA", map(list(DataType::Int32))),
    ])
}

fn scalar_schema() -> SchemaRef {
    let s = rich_schema();
    Arc::new(Schema::new(s.fields()[..10].to_vec()))
}

fn opt(s: BoxedStrategy<M>) -> BoxedStrategy<M> {
    prop_oneof![1 => Just(M::Null), 4 => s].boxed()
}

fn value_of(dt: &DataType) -> BoxedStrategy<M> {
    use base64::Engine;
    let v = match dt {
        DataType::Boolean => any::<bool>().prop_map(M::Bool).boxed(),
        DataType::Int32 => any::<i32>().prop_map(|i| M::Int(i.into())).boxed(),
        DataType::Int64 => any::<i64>().prop_map(M::Int).boxed(),
        DataType::Float64 => any::<f64>()
            .prop_map(|d| M::Dbl(if d.is_finite() { d } else { 0.0 }))
            .boxed(),
        DataType::Decimal128(_, _) => (-999_999_999_999i64..=999_999_999_999)
            .prop_map(|u| {
                let mut s = String::new();
                if u < 0 {
                    s.push('-');
                }
                let a = u.unsigned_abs();
                s.push_str(&format!("{}.{:03}", a / 1000, a % 1000));
                M::Raw(s)
            })
            .boxed(),
        DataType::Utf8 => any::<String>().prop_map(M::Str).boxed(),
        DataType::Binary => proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| M::Str(base64::engine::general_purpose::STANDARD.encode(b)))
            .boxed(),
        DataType::Timestamp(_, _) => any::<i64>().prop_map(M::Int).boxed(),
        DataType::Date32 => any::<i32>().prop_map(|i| M::Int(i.into())).boxed(),
        DataType::Time32(_) => (0i64..86_400_000).prop_map(M::Int).boxed(),
        DataType::List(item) => proptest::collection::vec(value_of(item.data_type()), 0..4)
            .prop_map(M::Arr)
            .boxed(),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                unreachable!()
            };
            proptest::collection::vec(("[a-z]{0,3}", value_of(kv[1].data_type())), 0..4)
                .prop_map(M::Obj)
                .boxed()
        }
        DataType::Struct(fields) => object_of(fields),
        _ => unreachable!(),
    };
    opt(v)
}

/// An object with each field present (maybe null) or absent.
fn object_of(fields: &Fields) -> BoxedStrategy<M> {
    let parts: Vec<BoxedStrategy<Option<(String, M)>>> = fields
        .iter()
        .map(|fl| {
            let name = fl.name().clone();
            proptest::option::weighted(0.8, value_of(fl.data_type()))
                .prop_map(move |v| v.map(|v| (name.clone(), v)))
                .boxed()
        })
        .collect();
    parts
        .prop_map(|ps| M::Obj(ps.into_iter().flatten().collect()))
        .boxed()
}

fn rows_of(s: &SchemaRef) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(object_of(s.fields()), 0..8).prop_map(|rows| {
        rows.iter()
            .map(|r| {
                let mut t = String::new();
                write_m(r, &mut t);
                t
            })
            .collect()
    })
}

fn decode_all(d: &mut dyn RowDecoder, rows: &[Vec<u8>]) -> RecordBatch {
    for r in rows {
        d.append(r)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(r)));
    }
    d.finish()
}

/// Fills absent object fields with null, recursively, as the encoder writes them.
fn complete(v: &mut serde_json::Value, dt: &DataType) {
    match (v, dt) {
        (serde_json::Value::Object(o), DataType::Struct(fields)) => {
            for fl in fields {
                let e = o
                    .entry(fl.name().clone())
                    .or_insert(serde_json::Value::Null);
                complete(e, fl.data_type());
            }
        }
        (serde_json::Value::Array(a), DataType::List(item)) => {
            for x in a {
                complete(x, item.data_type());
            }
        }
        (serde_json::Value::Object(o), DataType::Map(entries, _)) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return;
            };
            for (_, x) in o.iter_mut() {
                complete(x, kv[1].data_type());
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_round_trip(rows in rows_of(&rich_schema())) {
        let s = rich_schema();
        let mut d = JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap();
        let input: Vec<Vec<u8>> = rows.iter().map(|r| r.clone().into_bytes()).collect();
        let b1 = decode_all(&mut d, &input);
        prop_assert_eq!(b1.num_rows(), rows.len());
        // What the encoder writes is the input, absent fields as null.
        let out = encode(&mut JsonEncoder::default(), &b1);
        for (row, o) in rows.iter().zip(&out) {
            let mut want: serde_json::Value = serde_json::from_str(row).unwrap();
            complete(&mut want, &DataType::Struct(s.fields().clone()));
            let got: serde_json::Value = serde_json::from_slice(o).unwrap();
            prop_assert_eq!(got, want);
        }
        let b2 = decode_all(&mut d, &out);
        prop_assert_eq!(&b1, &b2);
    }

    #[test]
    fn avro_round_trip(rows in rows_of(&rich_schema())) {
        let s = rich_schema();
        let input: Vec<Vec<u8>> = rows.iter().map(|r| r.clone().into_bytes()).collect();
        let b1 = decode_all(&mut JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap(), &input);
        let w = avro_schema_for(&s, "KsqlDataSourceSchema", "io.confluent.ksql.avro_schemas").unwrap();
        let w = apache_avro::Schema::parse(&w).unwrap();
        let out = encode(&mut AvroEncoder::new(&s).unwrap(), &b1);
        // apache-avro reads every datum, to its last byte.
        for o in &out {
            let mut r = o.as_slice();
            avro_read(&w, &mut r);
            prop_assert!(r.is_empty());
        }
        let b2 = decode_all(&mut AvroDecoder::new(s.clone(), &w).unwrap(), &out);
        prop_assert_eq!(&b1, &b2);
    }

    #[test]
    fn avro_datums_of_apache_avro_decode(rows in rows_of(&rich_schema())) {
        // apache-avro writes the same rows (from their JSON form, through its own Value);
        // they decode to what the JSON decoder makes of the JSON.
        let s = rich_schema();
        let input: Vec<Vec<u8>> = rows.iter().map(|r| r.clone().into_bytes()).collect();
        let b1 = decode_all(&mut JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap(), &input);
        let w = avro_schema_for(&s, "KsqlDataSourceSchema", "io.confluent.ksql.avro_schemas").unwrap();
        let w = apache_avro::Schema::parse(&w).unwrap();
        let mut datums = Vec::new();
        for row in &rows {
            let mut v: serde_json::Value = serde_json::from_str(row).unwrap();
            complete(&mut v, &DataType::Struct(s.fields().clone()));
            let av = to_avro(&v, &DataType::Struct(s.fields().clone()), false);
            datums.push(avro_datum(&w, av).unwrap());
        }
        let b2 = decode_all(&mut AvroDecoder::new(s.clone(), &w).unwrap(), &datums);
        // apache-avro's maps are hash maps (order and repeated keys lost): compare rows as
        // JSON values, whose objects compare without order.
        let parse = |t: &String| serde_json::from_str::<serde_json::Value>(t).unwrap();
        let want: Vec<_> = json_text(&b1).iter().map(parse).collect();
        let got: Vec<_> = json_text(&b2).iter().map(parse).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn delimited_round_trip(rows in rows_of(&scalar_schema())) {
        let s = scalar_schema();
        let input: Vec<Vec<u8>> = rows.iter().map(|r| r.clone().into_bytes()).collect();
        let b1 = decode_all(&mut JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap(), &input);
        let out = encode(&mut DelimitedEncoder::default(), &b1);
        let b2 = decode_all(&mut DelimitedDecoder::new(s.clone(), b',').unwrap(), &out);
        prop_assert_eq!(&b1, &b2);
        let out = encode(&mut DelimitedEncoder::new(b'|'), &b1);
        let b3 = decode_all(&mut DelimitedDecoder::new(s, b'|').unwrap(), &out);
        prop_assert_eq!(&b1, &b3);
    }

    #[test]
    fn garbage_never_panics_nor_half_appends(
        rows in rows_of(&rich_schema()),
        junk in proptest::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let s = rich_schema();
        let input: Vec<Vec<u8>> = rows.iter().map(|r| r.clone().into_bytes()).collect();
        let b1 = decode_all(&mut JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap(), &input);
        let w = avro_schema_for(&s, "KsqlDataSourceSchema", "io.confluent.ksql.avro_schemas").unwrap();
        let w = apache_avro::Schema::parse(&w).unwrap();
        let avro_rows = encode(&mut AvroEncoder::new(&s).unwrap(), &b1);
        let scalar = scalar_schema();
        let mut decoders: Decoders = vec![
            (Box::new(JsonDecoder::new(s.clone(), JsonOptions::default()).unwrap()), input.clone()),
            (Box::new(AvroDecoder::new(s.clone(), &w).unwrap()), avro_rows),
            (Box::new(DelimitedDecoder::new(scalar.clone(), b',').unwrap()), input.clone()),
            (Box::new(KafkaDecoder::new(schema(vec![f("V", DataType::Int64)])).unwrap()), input.clone()),
            (Box::new(KafkaDecoder::new(schema(vec![f("V", DataType::Utf8)])).unwrap()), input),
        ];
        for (d, good) in &mut decoders {
            let mut expect = 0;
            let mut try_one = |d: &mut Box<dyn RowDecoder>, v: &[u8]| {
                if d.append(v).is_ok() { expect += 1; }
                assert_eq!(d.len(), expect);
            };
            try_one(d, &junk);
            for g in good.iter() {
                if g.is_empty() { continue; }
                try_one(d, &g[..cut.index(g.len())]);
                let mut flipped = g.clone();
                let i = flip.index(g.len());
                flipped[i] ^= 0x5a;
                try_one(d, &flipped);
                try_one(d, g);
            }
            let b = d.finish();
            assert_eq!(b.num_rows(), expect);
            // Whatever was accepted is a well-formed batch that encodes.
            encode(&mut JsonEncoder::default(), &b);
        }
    }
}

/// The apache-avro value of a completed JSON row for the [`avro_schema_for`] schema.
fn to_avro(v: &serde_json::Value, dt: &DataType, nullable: bool) -> apache_avro::types::Value {
    use apache_avro::types::Value as V;
    use base64::Engine;
    if nullable {
        return match v {
            serde_json::Value::Null => V::Union(0, Box::new(V::Null)),
            _ => V::Union(1, Box::new(to_avro(v, dt, false))),
        };
    }
    match dt {
        DataType::Boolean => V::Boolean(v.as_bool().unwrap()),
        DataType::Int32 => V::Int(v.as_i64().unwrap() as i32),
        DataType::Int64 => V::Long(v.as_i64().unwrap()),
        DataType::Float64 => V::Double(v.as_f64().unwrap()),
        DataType::Decimal128(_, s) => {
            // Exactly from the text: serde_json without arbitrary precision gives an f64,
            // so rebuild the unscaled value by rounding (12 digits fit an f64 exactly).
            let unscaled = (v.as_f64().unwrap() * 10f64.powi(i32::from(*s))).round() as i128;
            let b = unscaled.to_be_bytes();
            let mut k = 0;
            while k < 15
                && ((b[k] == 0 && b[k + 1] & 0x80 == 0) || (b[k] == 0xff && b[k + 1] & 0x80 != 0))
            {
                k += 1;
            }
            V::Decimal(apache_avro::Decimal::from(b[k..].to_vec()))
        }
        DataType::Utf8 => V::String(v.as_str().unwrap().to_owned()),
        DataType::Binary => V::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        ),
        DataType::Timestamp(_, _) => V::TimestampMillis(v.as_i64().unwrap()),
        DataType::Date32 => V::Date(v.as_i64().unwrap() as i32),
        DataType::Time32(_) => V::TimeMillis(v.as_i64().unwrap() as i32),
        DataType::List(item) => V::Array(
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| to_avro(x, item.data_type(), true))
                .collect(),
        ),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                unreachable!()
            };
            // Maps with repeated keys keep the last (as JSON objects do in serde_json).
            V::Map(
                v.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, x)| (k.clone(), to_avro(x, kv[1].data_type(), true)))
                    .collect(),
            )
        }
        DataType::Struct(fields) => V::Record(
            fields
                .iter()
                .map(|fl| {
                    (
                        fl.name().clone(),
                        to_avro(&v[fl.name().as_str()], fl.data_type(), true),
                    )
                })
                .collect(),
        ),
        _ => unreachable!(),
    }
}

#[test]
fn string_array_helpers_compile() {
    // Keep the imports honest.
    let a = StringArray::from(vec!["x"]);
    assert_eq!(a.len(), 1);
}
