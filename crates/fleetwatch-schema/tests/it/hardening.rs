//! Inputs that used to crash, overflow or be silently accepted: deep datums, unsatisfiable
//! recursive schemas, id and version exhaustion, bad imported ids.

use crate::registry::{code, open, req};
use fleetwatch_schema::types::{Compatibility, Mode, RegisterRequest};

const NODE: &str =
    r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#;

#[test]
fn a_10000_deep_value_is_undecodable_not_a_stack_overflow() {
    // a plain (2 MiB stack) test thread, a current-thread runtime on it
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_, r) = open(dir.path()).await;
        let id = r.register("node-value", &req(NODE), false).await.unwrap();
        let mut msg = vec![0u8];
        msg.extend_from_slice(&id.to_be_bytes());
        msg.extend(std::iter::repeat_n(0x02, 10_000));
        msg.push(0x00);
        let e = r.decode_value(&msg).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("deeper than 100 levels"), "{text}");
        assert!(text.contains("$.next.next"), "{text}");
        // a shallow chain still decodes
        let mut ok = vec![0u8];
        ok.extend_from_slice(&id.to_be_bytes());
        ok.extend([0x02, 0x02, 0x00]);
        let (_, doc) = r.decode_value(&ok).unwrap();
        assert_eq!(doc, serde_json::json!({"next": {"next": {"next": null}}}));

        // JSON Schema values: deep JSON is refused with the limit, before parsing
        let json = RegisterRequest {
            schema: r#"{"type":"array"}"#.into(),
            schema_type: Some("JSON".into()),
            ..Default::default()
        };
        let jid = r.register("deep-json", &json, false).await.unwrap();
        let mut deep = vec![0u8];
        deep.extend_from_slice(&jid.to_be_bytes());
        deep.extend("[".repeat(10_000).bytes());
        deep.extend("]".repeat(10_000).bytes());
        let e = r.decode_value(&deep).unwrap_err().to_string();
        assert!(
            e.contains("deeper than 100 levels") && e.contains("byte 100"),
            "{e}"
        );
    });
}

#[tokio::test]
async fn unsatisfiable_recursive_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    let refused = [
        (
            r#"{"type":"record","name":"Loop","fields":[{"name":"me","type":"Loop"}]}"#,
            "Loop.me",
        ),
        (
            r#"{"type":"record","name":"A","namespace":"n","fields":[{"name":"x","type":"int"},{"name":"b","type":{"type":"record","name":"B","fields":[{"name":"a","type":"A"}]}}]}"#,
            "n.A.b → n.B.a → n.A",
        ),
        // every branch of the union recurses
        (
            r#"{"type":"record","name":"U","fields":[{"name":"u","type":["U",{"type":"record","name":"V","fields":[{"name":"u","type":"U"}]}]}]}"#,
            "U.u",
        ),
        // reachable only through an array, still no finite value of its own
        (
            r#"{"type":"record","name":"R","fields":[{"name":"xs","type":{"type":"array","items":{"type":"record","name":"L","fields":[{"name":"l","type":"L"}]}}}]}"#,
            "L.l",
        ),
    ];
    for (schema, path) in refused {
        let e = r.register("loop", &req(schema), false).await.unwrap_err();
        assert_eq!(e.code(), 42201, "{schema}: {e}");
        assert!(e.to_string().contains(path), "{schema}: {e}");
    }
    let allowed = [
        NODE,
        r#"{"type":"record","name":"T","fields":[{"name":"kids","type":{"type":"array","items":"T"}}]}"#,
        r#"{"type":"record","name":"M","fields":[{"name":"kids","type":{"type":"map","values":"M"}}]}"#,
        r#"{"type":"record","name":"A2","fields":[{"name":"b","type":{"type":"record","name":"B2","fields":[{"name":"a","type":["null","A2"]}]}}]}"#,
    ];
    for (i, schema) in allowed.into_iter().enumerate() {
        r.register(&format!("ok-{i}"), &req(schema), false)
            .await
            .unwrap_or_else(|e| panic!("{schema}: {e}"));
    }
}

#[tokio::test]
async fn ids_and_versions_never_overflow_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    r.set_mode(Some("imp"), Mode::Import).await.unwrap();
    let mut top = req(NODE);
    top.id = Some(i32::MAX);
    top.version = Some(i32::MAX);
    assert_eq!(r.register("imp", &top, false).await.unwrap(), i32::MAX);
    // the next automatic id would be 2^31: refused, nothing written
    let other = r#"{"type":"record","name":"Other","fields":[]}"#;
    let e = r.register("fresh", &req(other), false).await.unwrap_err();
    assert_eq!(e.code(), 42205, "{e}");
    assert!(e.to_string().contains("2147483647"), "{e}");
    assert_eq!(code(r.versions("fresh", true)), 40401);
    // the same schema under another subject keeps its id
    assert_eq!(
        r.register("imp2", &req(NODE), false).await.unwrap(),
        i32::MAX
    );

    // versions: the next version after 2^31-1 is refused too
    let dir2 = tempfile::tempdir().unwrap();
    let (_, r2) = open(dir2.path()).await;
    r2.set_mode(Some("v"), Mode::Import).await.unwrap();
    let mut last = req(NODE);
    last.id = Some(5);
    last.version = Some(i32::MAX);
    r2.register("v", &last, false).await.unwrap();
    r2.delete_mode("v").await.unwrap();
    r2.set_config(Some("v"), Compatibility::None).await.unwrap();
    let e = r2.register("v", &req(other), false).await.unwrap_err();
    assert_eq!(e.code(), 42205, "{e}");
    assert!(e.to_string().contains("version"), "{e}");
    assert_eq!(r2.versions("v", false).unwrap(), vec![i32::MAX]);
    assert_eq!(r2.register("w", &req(other), false).await.unwrap(), 6);

    // imported ids and versions must be positive
    r.set_mode(Some("imp3"), Mode::Import).await.unwrap();
    for (id, version, want) in [
        (Some(0), Some(1), 42205),
        (Some(-5), Some(1), 42205),
        (Some(7), Some(0), 42202),
        (Some(7), Some(-1), 42202),
    ] {
        let mut x = req(other);
        x.id = id;
        x.version = version;
        assert_eq!(
            code(r.register("imp3", &x, false).await),
            want,
            "{id:?} {version:?}"
        );
    }
}

#[test]
fn the_validating_writer_refuses_deep_values_instead_of_overflowing() {
    use apache_avro::types::Value;
    use fleetwatch_schema::codec::AvroCodec;
    // A 100-deep value (allowed by the reader) on a 2 MiB thread, as a test thread has.
    let parsed = fleetwatch_schema::avro::parse(NODE, &[]).unwrap();
    let codec = AvroCodec::new(&parsed).unwrap();
    let mut v = Value::Union(0, Box::new(Value::Null));
    for _ in 0..100 {
        v = Value::Union(1, Box::new(Value::Record(vec![("next".into(), v)])));
    }
    let Value::Union(_, inner) = v else {
        unreachable!()
    };
    let mut out = Vec::new();
    let e = codec.encode(&inner, &mut out).unwrap_err().to_string();
    assert!(e.contains("deeper than 32 levels"), "{e}");
    // The writer for values built from the schema takes the whole depth the reader allows.
    codec.encode_trusted(&inner, &mut out).unwrap();
    // A shallow value goes through the validating writer.
    let mut shallow = Value::Union(0, Box::new(Value::Null));
    for _ in 0..5 {
        shallow = Value::Union(1, Box::new(Value::Record(vec![("next".into(), shallow)])));
    }
    let Value::Union(_, inner) = shallow else {
        unreachable!()
    };
    out.clear();
    codec.encode(&inner, &mut out).unwrap();
    assert_eq!(out, vec![2, 2, 2, 2, 0]);
}
