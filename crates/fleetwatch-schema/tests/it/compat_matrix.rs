//! For each level, (existing versions, new schema, expected verdict), drawn from Confluent's
//! documented rules for Avro and the documented JSON Schema subset.

use fleetwatch_schema::compat::{self, Parsed};
use fleetwatch_schema::types::Compatibility::{self, *};
use fleetwatch_schema::{avro, json_schema};

fn a(text: &str) -> Parsed {
    Parsed::Avro(avro::parse(text, &[]).unwrap_or_else(|e| panic!("{e}: {text}")))
}

fn j(text: &str) -> Parsed {
    Parsed::Json(json_schema::parse(text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

fn rec(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"User","namespace":"acme","fields":[{fields}]}}"#)
}

const NAME: &str = r#"{"name":"name","type":"string"}"#;

struct Case {
    what: &'static str,
    old: Vec<String>,
    new: String,
    /// expected compatible under BACKWARD, FORWARD, FULL (non-transitive)
    expect: [bool; 3],
}

fn run(cases: Vec<Case>, parse: fn(&str) -> Parsed) {
    let mut failures = Vec::new();
    for c in &cases {
        let old: Vec<(i32, Parsed)> = c
            .old
            .iter()
            .enumerate()
            .map(|(i, s)| (i as i32 + 1, parse(s)))
            .collect();
        let new = parse(&c.new);
        for (level, want) in [Backward, Forward, Full].into_iter().zip(c.expect) {
            let reasons = compat::check(level, &new, &old);
            if reasons.is_empty() != want {
                failures.push(format!(
                    "{} under {level:?}: expected {want}, reasons {reasons:?}",
                    c.what
                ));
            }
        }
        // NONE accepts everything
        assert!(compat::check(Compatibility::None, &new, &old).is_empty());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn avro_rules() {
    let case = |what, old: Vec<String>, new: String, expect| Case {
        what,
        old,
        new,
        expect,
    };
    run(
        vec![
            case("add field with default", vec![rec(NAME)], rec(&format!(r#"{NAME},{{"name":"age","type":"int","default":0}}"#)), [true, true, true]),
            case("add field without default", vec![rec(NAME)], rec(&format!(r#"{NAME},{{"name":"age","type":"int"}}"#)), [false, true, false]),
            case("remove field without default", vec![rec(&format!(r#"{NAME},{{"name":"email","type":"string"}}"#))], rec(NAME), [true, false, false]),
            case("remove field with default", vec![rec(&format!(r#"{NAME},{{"name":"email","type":"string","default":""}}"#))], rec(NAME), [true, true, true]),
            case("promote int to long", vec![rec(r#"{"name":"n","type":"int"}"#)], rec(r#"{"name":"n","type":"long"}"#), [true, false, false]),
            case("demote long to int", vec![rec(r#"{"name":"n","type":"long"}"#)], rec(r#"{"name":"n","type":"int"}"#), [false, true, false]),
            case("promote float to double", vec![rec(r#"{"name":"n","type":"float"}"#)], rec(r#"{"name":"n","type":"double"}"#), [true, false, false]),
            case("promote int to double", vec![rec(r#"{"name":"n","type":"int"}"#)], rec(r#"{"name":"n","type":"double"}"#), [true, false, false]),
            case("string to bytes", vec![rec(r#"{"name":"n","type":"string"}"#)], rec(r#"{"name":"n","type":"bytes"}"#), [true, true, true]),
            case("int to string", vec![rec(r#"{"name":"n","type":"int"}"#)], rec(r#"{"name":"n","type":"string"}"#), [false, false, false]),
            case("widen to a union", vec![rec(r#"{"name":"n","type":"string"}"#)], rec(r#"{"name":"n","type":["null","string"],"default":null}"#), [true, false, false]),
            case("narrow a union", vec![rec(r#"{"name":"n","type":["null","string"]}"#)], rec(r#"{"name":"n","type":"string"}"#), [false, true, false]),
            case("add a union branch", vec![rec(r#"{"name":"n","type":["null","string"]}"#)], rec(r#"{"name":"n","type":["null","string","int"]}"#), [true, false, false]),
            case("add enum symbol", vec![rec(r#"{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}"#)], rec(r#"{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}}"#), [true, false, false]),
            case("add enum symbol, old reader has a default", vec![rec(r#"{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}}"#)], rec(r#"{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"],"default":"A"}}"#), [true, true, true]),
            case("rename record without alias", vec![rec(NAME)], r#"{"type":"record","name":"Person","namespace":"acme","fields":[{"name":"name","type":"string"}]}"#.into(), [false, false, false]),
            case("rename record with alias", vec![rec(NAME)], r#"{"type":"record","name":"Person","namespace":"acme","aliases":["User"],"fields":[{"name":"name","type":"string"}]}"#.into(), [true, false, false]),
            case("rename field with alias", vec![rec(NAME)], rec(r#"{"name":"full_name","type":"string","aliases":["name"]}"#), [true, false, false]),
            case("nested record gains a field without default", vec![rec(r#"{"name":"addr","type":{"type":"record","name":"Addr","fields":[{"name":"city","type":"string"}]}}"#)], rec(r#"{"name":"addr","type":{"type":"record","name":"Addr","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string"}]}}"#), [false, true, false]),
            case("array items promoted", vec![rec(r#"{"name":"xs","type":{"type":"array","items":"int"}}"#)], rec(r#"{"name":"xs","type":{"type":"array","items":"long"}}"#), [true, false, false]),
            case("map values changed", vec![rec(r#"{"name":"m","type":{"type":"map","values":"int"}}"#)], rec(r#"{"name":"m","type":{"type":"map","values":"boolean"}}"#), [false, false, false]),
            case("fixed size changed", vec![rec(r#"{"name":"f","type":{"type":"fixed","name":"F","size":4}}"#)], rec(r#"{"name":"f","type":{"type":"fixed","name":"F","size":8}}"#), [false, false, false]),
            case("recursive type gains a defaulted field",
                vec![r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}"#.into()],
                r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null},{"name":"w","type":"int","default":1}]}"#.into(),
                [true, true, true]),
            case("logical type timestamp-millis read as long", vec![rec(r#"{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}"#)], rec(r#"{"name":"t","type":"long"}"#), [true, true, true]),
        ],
        a,
    );
}

#[test]
fn transitive_levels_check_every_version() {
    let v1 = a(&rec(NAME));
    let v2 = a(&rec(&format!(
        r#"{NAME},{{"name":"age","type":"int","default":0}}"#
    )));
    let v3 = a(&rec(&format!(r#"{NAME},{{"name":"age","type":"int"}}"#)));
    let old = vec![(1, v1), (2, v2)];
    assert!(
        compat::check(Backward, &v3, &old).is_empty(),
        "v3 reads v2 data"
    );
    let r = compat::check(BackwardTransitive, &v3, &old);
    assert!(
        r.iter().any(|m| m.contains("oldSchemaVersion: 1")
            && m.contains("READER_FIELD_MISSING_DEFAULT_VALUE")),
        "{r:?}"
    );
    assert!(!compat::check(FullTransitive, &v3, &old).is_empty());

    let w1 = a(&rec(&format!(r#"{NAME},{{"name":"b","type":"string"}}"#)));
    let w2 = a(&rec(&format!(
        r#"{NAME},{{"name":"b","type":"string","default":""}}"#
    )));
    let w3 = a(&rec(NAME));
    let old = vec![(1, w1), (2, w2)];
    assert!(
        compat::check(Forward, &w3, &old).is_empty(),
        "v2 reads v3 data: b has a default"
    );
    let r = compat::check(ForwardTransitive, &w3, &old);
    assert!(
        r.iter()
            .any(|m| m.contains("oldSchemaVersion: 1") && m.contains("FORWARD")),
        "{r:?}"
    );
}

#[test]
fn json_schema_rules() {
    let obj = |props: &str, extra: &str| {
        format!(r#"{{"type":"object","properties":{{{props}}}{extra}}}"#)
    };
    let case = |what, old: String, new: String, expect| Case {
        what,
        old: vec![old],
        new,
        expect,
    };
    run(
        vec![
            case(
                "add property to a closed model",
                obj(
                    r#""a":{"type":"string"}"#,
                    r#","additionalProperties":false"#,
                ),
                obj(
                    r#""a":{"type":"string"},"b":{"type":"string"}"#,
                    r#","additionalProperties":false"#,
                ),
                [true, false, false],
            ),
            case(
                "add property to an open model",
                obj(r#""a":{"type":"string"}"#, ""),
                obj(r#""a":{"type":"string"},"b":{"type":"string"}"#, ""),
                [false, true, false],
            ),
            case(
                "make a property required",
                obj(r#""a":{"type":"string"}"#, ""),
                obj(r#""a":{"type":"string"}"#, r#","required":["a"]"#),
                [false, true, false],
            ),
            case(
                "widen integer to number",
                obj(r#""n":{"type":"integer"}"#, ""),
                obj(r#""n":{"type":"number"}"#, ""),
                [true, false, false],
            ),
            case(
                "change string to integer",
                obj(r#""n":{"type":"string"}"#, ""),
                obj(r#""n":{"type":"integer"}"#, ""),
                [false, false, false],
            ),
            case(
                "extend an enum",
                obj(r#""e":{"enum":["x","y"]}"#, ""),
                obj(r#""e":{"enum":["x","y","z"]}"#, ""),
                [true, false, false],
            ),
            case(
                "narrow maxLength",
                obj(r#""s":{"type":"string","maxLength":10}"#, ""),
                obj(r#""s":{"type":"string","maxLength":5}"#, ""),
                [false, true, false],
            ),
            case(
                "close an open model",
                obj(r#""a":{"type":"string"}"#, ""),
                obj(
                    r#""a":{"type":"string"}"#,
                    r#","additionalProperties":false"#,
                ),
                [false, true, false],
            ),
            case(
                "nested property type change",
                obj(
                    r#""o":{"type":"object","properties":{"x":{"type":"string"}}}"#,
                    "",
                ),
                obj(
                    r#""o":{"type":"object","properties":{"x":{"type":"boolean"}}}"#,
                    "",
                ),
                [false, false, false],
            ),
            case(
                "array items widened",
                obj(r#""xs":{"type":"array","items":{"type":"integer"}}"#, ""),
                obj(r#""xs":{"type":"array","items":{"type":"number"}}"#, ""),
                [true, false, false],
            ),
            case(
                "unchanged",
                obj(r#""a":{"type":"string"}"#, ""),
                obj(r#""a":{"type":"string"}"#, ""),
                [true, true, true],
            ),
        ],
        j,
    );
}

#[test]
fn invalid_schemas_are_refused_with_a_reason() {
    let e = avro::parse(
        r#"{"type":"record","name":"X","fields":[{"name":"a","type":"nosuchtype"}]}"#,
        &[],
    )
    .unwrap_err();
    assert_eq!(e.code(), 42201);
    assert!(e.to_string().contains("nosuchtype"), "{e}");
    let e = avro::parse("{not json", &[]).unwrap_err();
    assert_eq!(e.code(), 42201);
    let e = json_schema::parse(r#"{"type":"object","properties":{"a":{"type":"nosuchtype"}}}"#)
        .unwrap_err();
    assert_eq!(e.code(), 42201);
    let e = json_schema::parse("[1,2]").unwrap_err();
    assert_eq!(e.code(), 42201);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn field_type() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "int", "long", "float", "double", "string", "bytes", "boolean",
        ])
    }

    fn record(types: &[&str], extra: &str) -> String {
        let fields: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, t)| format!(r#"{{"name":"f{i}","type":"{t}"}}"#))
            .collect();
        format!(
            r#"{{"type":"record","name":"P","fields":[{}{extra}]}}"#,
            fields.join(",")
        )
    }

    proptest! {
        #[test]
        fn every_schema_is_fully_compatible_with_itself(types in prop::collection::vec(field_type(), 1..8)) {
            let s = a(&record(&types, ""));
            let old = vec![(1, s.clone())];
            prop_assert!(compat::check(FullTransitive, &s, &old).is_empty());
        }

        #[test]
        fn a_new_field_is_backward_compatible_exactly_when_it_has_a_default(
            types in prop::collection::vec(field_type(), 1..6),
            with_default in any::<bool>(),
        ) {
            let old = vec![(1, a(&record(&types, "")))];
            let extra = if with_default {
                r#",{"name":"added","type":"long","default":0}"#
            } else {
                r#",{"name":"added","type":"long"}"#
            };
            let new = a(&record(&types, extra));
            prop_assert_eq!(compat::check(Backward, &new, &old).is_empty(), with_default);
            // old readers ignore the new field either way
            prop_assert!(compat::check(Forward, &new, &old).is_empty());
        }
    }
}
