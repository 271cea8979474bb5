use fleetwatch_core::Log;
use fleetwatch_log::EmbeddedConfig;
use fleetwatch_schema::types::{Compatibility, Mode, RegisterRequest, SchemaReference};
use fleetwatch_schema::{Registry, RegistryError, SchemaRegistryConfig};
use std::sync::Arc;

const USER_V1: &str = r#"{"type":"record","name":"User","namespace":"acme","fields":[{"name":"name","type":"string"}]}"#;
const USER_V2: &str = r#"{"type":"record","name":"User","namespace":"acme","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}"#;
const USER_BAD: &str = r#"{"type":"record","name":"User","namespace":"acme","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}"#;

pub(crate) fn req(schema: &str) -> RegisterRequest {
    RegisterRequest {
        schema: schema.into(),
        ..Default::default()
    }
}

pub(crate) async fn open(dir: &std::path::Path) -> (Arc<dyn Log>, Arc<Registry>) {
    let log: Arc<dyn Log> = Arc::new(EmbeddedConfig::at(dir).build().unwrap());
    let r = SchemaRegistryConfig::default()
        .build(log.clone())
        .await
        .unwrap();
    (log, r)
}

pub(crate) fn code<T: std::fmt::Debug>(r: Result<T, RegistryError>) -> u32 {
    r.expect_err("expected an error").code()
}

#[tokio::test]
async fn ids_versions_and_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    let id = r
        .register("users-value", &req(USER_V1), false)
        .await
        .unwrap();
    assert_eq!(id, 1);
    // same schema, reformatted: same id, no new version
    let spaced = USER_V1.replace(',', " ,\n ").replace(':', " : ");
    assert_eq!(
        r.register("users-value", &req(&spaced), false)
            .await
            .unwrap(),
        1
    );
    assert_eq!(r.versions("users-value", false).unwrap(), vec![1]);
    // same schema under another subject: same id, version 1 there
    assert_eq!(
        r.register("other-value", &req(USER_V1), false)
            .await
            .unwrap(),
        1
    );
    assert_eq!(r.versions_by_id(1, false).unwrap().len(), 2);
    // adding a default is a new schema: a new id (identity keeps defaults)
    let id2 = r
        .register("users-value", &req(USER_V2), false)
        .await
        .unwrap();
    assert_eq!(id2, 2);
    assert_eq!(r.versions("users-value", false).unwrap(), vec![1, 2]);
    let latest = r.get_version("users-value", "latest", false).unwrap();
    assert_eq!((latest.version, latest.id), (2, 2));
    assert_eq!(
        r.get_version("users-value", "-1", false).unwrap().version,
        2
    );
    assert_eq!(r.get_version("users-value", "1", false).unwrap().id, 1);
    let found = r
        .lookup("users-value", &req(USER_V2), false, false)
        .unwrap();
    assert_eq!((found.version, found.id), (2, 2));
    assert_eq!(r.subjects(None, false), vec!["other-value", "users-value"]);
    assert_eq!(r.subjects(Some("users"), false), vec!["users-value"]);

    assert_eq!(code(r.get_version("nope", "1", false)), 40401);
    assert_eq!(code(r.get_version("users-value", "9", false)), 40402);
    assert_eq!(code(r.get_version("users-value", "abc", false)), 42202);
    assert_eq!(code(r.schema_by_id(99)), 40403);
    assert_eq!(
        code(r.lookup("users-value", &req(USER_BAD), false, false)),
        40403
    );
    let invalid = r
        .register("users-value", &req(r#"{"type":"recrd"}"#), false)
        .await;
    assert_eq!(code(invalid), 42201);
    let mut proto = req("syntax = \"proto3\";");
    proto.schema_type = Some("PROTOBUF".into());
    assert_eq!(code(r.register("p", &proto, false).await), 42201);
    let mut xml = req("<x/>");
    xml.schema_type = Some("XML".into());
    assert_eq!(code(r.register("p", &xml, false).await), 42201);
}

#[tokio::test]
async fn compatibility_is_enforced_and_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    r.register("u", &req(USER_V1), false).await.unwrap();
    match r.register("u", &req(USER_BAD), false).await {
        Err(RegistryError::Incompatible { reasons, .. }) => {
            assert!(
                reasons
                    .iter()
                    .any(|m| m.contains("READER_FIELD_MISSING_DEFAULT_VALUE") && m.contains("age")),
                "{reasons:?}"
            );
        }
        other => panic!("expected 409, got {other:?}"),
    }
    let check = r
        .check_compatibility("u", None, &req(USER_BAD), false)
        .unwrap();
    assert!(!check.is_compatible && !check.messages.is_empty());
    assert!(
        r.check_compatibility("u", Some("latest"), &req(USER_V2), false)
            .unwrap()
            .is_compatible
    );

    assert_eq!(r.get_config(None, true).unwrap(), Compatibility::Backward);
    assert_eq!(code(r.get_config(Some("u"), false)), 40408);
    assert_eq!(
        r.get_config(Some("u"), true).unwrap(),
        Compatibility::Backward
    );
    r.set_config(Some("u"), Compatibility::None).await.unwrap();
    assert_eq!(r.get_config(Some("u"), false).unwrap(), Compatibility::None);
    assert_eq!(r.register("u", &req(USER_BAD), false).await.unwrap(), 2);
    assert_eq!(
        r.delete_config(Some("u")).await.unwrap(),
        Compatibility::None
    );
    assert_eq!(code(r.get_config(Some("u"), false)), 40408);
    r.set_config(None, Compatibility::Full).await.unwrap();
    assert_eq!(r.get_config(Some("u"), true).unwrap(), Compatibility::Full);
    assert_eq!(Compatibility::parse("sideways").unwrap_err().code(), 42203);
}

#[tokio::test]
async fn modes_import_and_readonly() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    let mut with_id = req(USER_V1);
    with_id.id = Some(100);
    with_id.version = Some(5);
    assert_eq!(
        code(r.register("imp", &with_id, false).await),
        42205,
        "ids only in IMPORT mode"
    );
    r.set_mode(Some("imp"), Mode::Import).await.unwrap();
    assert_eq!(r.register("imp", &with_id, false).await.unwrap(), 100);
    let sv = r.get_version("imp", "5", false).unwrap();
    assert_eq!((sv.id, sv.version), (100, 5));
    let mut clash = req(USER_V2);
    clash.id = Some(100);
    assert_eq!(
        code(r.register("imp", &clash, false).await),
        42205,
        "an id keeps its schema"
    );
    // new ids continue after imported ones
    r.delete_mode("imp").await.unwrap();
    assert_eq!(r.register("next", &req(USER_V2), false).await.unwrap(), 101);

    r.set_mode(Some("ro"), Mode::Readonly).await.unwrap();
    assert_eq!(code(r.register("ro", &req(USER_V1), false).await), 42205);
    assert_eq!(r.get_mode(Some("ro"), false).unwrap(), Mode::Readonly);
    assert_eq!(code(r.get_mode(Some("none"), false)), 40409);
    assert_eq!(r.get_mode(None, true).unwrap(), Mode::Readwrite);
    assert_eq!(Mode::parse("sometimes").unwrap_err().code(), 42204);
}

#[tokio::test]
async fn soft_and_permanent_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    r.register("s", &req(USER_V1), false).await.unwrap();
    r.register("s", &req(USER_V2), false).await.unwrap();
    assert_eq!(code(r.delete_version("s", "1", true).await), 40407);
    assert_eq!(r.delete_version("s", "1", false).await.unwrap(), 1);
    assert_eq!(r.versions("s", false).unwrap(), vec![2]);
    assert_eq!(r.versions("s", true).unwrap(), vec![1, 2]);
    assert_eq!(code(r.get_version("s", "1", false)), 40402);
    assert_eq!(r.get_version("s", "1", true).unwrap().id, 1);
    assert_eq!(r.delete_version("s", "1", true).await.unwrap(), 1);
    assert_eq!(r.versions("s", true).unwrap(), vec![2]);

    assert_eq!(code(r.delete_subject("s", true).await), 40405);
    assert_eq!(r.delete_subject("s", false).await.unwrap(), vec![2]);
    assert_eq!(code(r.delete_subject("s", false).await), 40404);
    assert!(r.subjects(None, false).is_empty());
    assert_eq!(r.subjects(None, true), vec!["s"]);
    assert_eq!(r.delete_subject("s", true).await.unwrap(), vec![2]);
    assert_eq!(code(r.versions("s", true)), 40401);
    // re-registering after a permanent delete starts at version 1 with the old id
    assert_eq!(r.register("s", &req(USER_V2), false).await.unwrap(), 2);
    assert_eq!(r.versions("s", false).unwrap(), vec![1]);
}

#[tokio::test]
async fn references_resolve_and_protect_what_they_reference() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    let addr = r#"{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"city","type":"string"}]}"#;
    let addr_id = r.register("address", &req(addr), false).await.unwrap();
    let user = r#"{"type":"record","name":"User","namespace":"acme","fields":[{"name":"home","type":"acme.Address"}]}"#;
    // without the reference, the type is unknown
    assert_eq!(code(r.register("user", &req(user), false).await), 42201);
    let mut with_ref = req(user);
    with_ref.references = vec![SchemaReference {
        name: "acme.Address".into(),
        subject: "address".into(),
        version: 1,
    }];
    let user_id = r.register("user", &with_ref, false).await.unwrap();
    assert_ne!(user_id, addr_id);
    assert_eq!(r.referenced_by("address", "1").unwrap(), vec![user_id]);
    assert_eq!(r.schema_by_id(user_id).unwrap().references.len(), 1);
    assert_eq!(code(r.delete_version("address", "1", false).await), 42206);
    let mut dangling = req(user);
    dangling.references = vec![SchemaReference {
        name: "acme.Address".into(),
        subject: "address".into(),
        version: 7,
    }];
    let e = r.register("user2", &dangling, false).await.unwrap_err();
    assert_eq!(e.code(), 42201);
    assert!(e.to_string().contains("version 7"), "{e}");
}

#[tokio::test]
async fn state_survives_a_restart_with_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, r) = open(dir.path()).await;
        r.register("a-value", &req(USER_V1), false).await.unwrap();
        r.register("a-value", &req(USER_V2), false).await.unwrap();
        r.register("b-value", &req(USER_V2), false).await.unwrap();
        r.set_config(Some("b-value"), Compatibility::FullTransitive)
            .await
            .unwrap();
        r.delete_version("a-value", "1", false).await.unwrap();
        r.set_mode(Some("a-value"), Mode::Readonly).await.unwrap();
        drop(r);
        drop(log);
    }
    let (_, r) = open(dir.path()).await;
    assert_eq!(r.subjects(None, false), vec!["a-value", "b-value"]);
    assert_eq!(r.versions("a-value", true).unwrap(), vec![1, 2]);
    assert_eq!(r.versions("a-value", false).unwrap(), vec![2]);
    assert_eq!(r.get_version("b-value", "1", false).unwrap().id, 2);
    assert_eq!(
        r.get_config(Some("b-value"), false).unwrap(),
        Compatibility::FullTransitive
    );
    assert_eq!(r.get_mode(Some("a-value"), false).unwrap(), Mode::Readonly);
    // the next id continues after the highest
    let v3 = USER_V2.replace("\"default\":0", "\"default\":1");
    r.set_mode(Some("a-value"), Mode::Readwrite).await.unwrap();
    assert_eq!(r.register("a-value", &req(&v3), false).await.unwrap(), 3);
}

#[tokio::test]
async fn followers_serve_reads_and_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (log, leader) = open(dir.path()).await;
    let follower = SchemaRegistryConfig {
        leader: false,
        ..Default::default()
    }
    .build(log.clone())
    .await
    .unwrap();
    assert_eq!(
        code(follower.register("x", &req(USER_V1), false).await),
        50003
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let tail = tokio::spawn(follower.clone().run(cancel.clone()));
    let id = leader.register("x", &req(USER_V1), false).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while follower.schema_by_id(id).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower never saw the leader's write"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(follower.get_version("x", "latest", false).unwrap().id, id);
    cancel.cancel();
    tail.await.unwrap();
}

#[tokio::test]
async fn json_schema_references_resolve_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    let json = |schema: &str| RegisterRequest {
        schema: schema.into(),
        schema_type: Some("JSON".into()),
        ..Default::default()
    };
    r.register(
        "address",
        &json(r#"{"type":"object","properties":{"city":{"type":"string"}}}"#),
        false,
    )
    .await
    .unwrap();
    let user = r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#;
    let e = r.register("user", &json(user), false).await.unwrap_err();
    assert_eq!(
        e.code(),
        42201,
        "an unresolvable $ref is an invalid schema: {e}"
    );
    let mut with_ref = json(user);
    with_ref.references = vec![SchemaReference {
        name: "address.json".into(),
        subject: "address".into(),
        version: 1,
    }];
    let id = r.register("user", &with_ref, false).await.unwrap();
    assert_eq!(r.referenced_by("address", "1").unwrap(), vec![id]);
}
