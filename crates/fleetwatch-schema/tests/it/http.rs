//! Every error class of the REST API answers `{"error_code": …, "message": …}` with the
//! registry's content type: table-driven over `Router::oneshot`.

use crate::registry::open;
use axum::body::Body;
use axum::http::Request;
use fleetwatch_schema::http::{CONTENT_TYPE, MAX_BODY_BYTES, router};
use tower::ServiceExt;

struct Case {
    what: &'static str,
    method: &'static str,
    uri: &'static str,
    body: Option<String>,
    status: u16,
    code: u64,
    message: &'static str,
}

fn case(
    what: &'static str,
    method: &'static str,
    uri: &'static str,
    body: Option<String>,
    status: u16,
    code: u64,
    message: &'static str,
) -> Case {
    Case {
        what,
        method,
        uri,
        body,
        status,
        code,
        message,
    }
}

#[tokio::test]
async fn every_error_has_the_confluent_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    r.register("s", &crate::registry::req(r#""string""#), false)
        .await
        .unwrap();
    let app = router(r);
    let schema = |s: &str| Some(serde_json::json!({ "schema": s }).to_string());
    // a schema whose _schemas record is over the log's 1 MiB limit, in a body under 4 MiB
    let huge = format!(
        r#"{{"type":"record","name":"Big","doc":"{}","fields":[]}}"#,
        "x".repeat(1_200_000)
    );
    let cases = vec![
        case(
            "id not a number",
            "GET",
            "/schemas/ids/abc",
            None,
            404,
            40403,
            "abc",
        ),
        case(
            "version not a number",
            "GET",
            "/subjects/s/versions/notanumber",
            None,
            422,
            42202,
            "notanumber",
        ),
        case(
            "version zero",
            "GET",
            "/subjects/s/versions/0",
            None,
            422,
            42202,
            "'0'",
        ),
        case(
            "path not UTF-8",
            "GET",
            "/subjects/%FF/versions",
            None,
            400,
            40001,
            "invalid path",
        ),
        case(
            "query boolean",
            "POST",
            "/subjects/s/versions?normalize=maybe",
            schema(r#""int""#),
            400,
            40001,
            "normalize=\"maybe\"",
        ),
        case(
            "query boolean on a GET",
            "GET",
            "/subjects?deleted=yes",
            None,
            400,
            40001,
            "deleted",
        ),
        case(
            "body not JSON",
            "POST",
            "/subjects/s/versions",
            Some("{nope".into()),
            400,
            40001,
            "invalid request body",
        ),
        case(
            "body of the wrong shape",
            "PUT",
            "/config",
            Some(r#"{"compatibility": 3}"#.into()),
            400,
            40001,
            "invalid request body",
        ),
        case(
            "body over the limit",
            "POST",
            "/subjects/s/versions",
            Some("x".repeat(MAX_BODY_BYTES + 1)),
            413,
            413,
            "4194304 bytes",
        ),
        case(
            "schema over the log's record limit",
            "POST",
            "/subjects/big/versions",
            schema(&huge),
            422,
            42209,
            "1048576 bytes",
        ),
        case(
            "unknown path",
            "GET",
            "/nowhere",
            None,
            404,
            404,
            "/nowhere",
        ),
        case(
            "method not allowed",
            "PATCH",
            "/subjects/s/versions",
            None,
            405,
            405,
            "PATCH",
        ),
        case(
            "delete on /schemas",
            "DELETE",
            "/schemas/ids/1",
            None,
            405,
            405,
            "Method Not Allowed",
        ),
        case(
            "registry error",
            "GET",
            "/subjects/none/versions",
            None,
            404,
            40401,
            "none",
        ),
        case(
            "invalid schema",
            "POST",
            "/subjects/s/versions",
            schema(r#"{"type":"recrd"}"#),
            422,
            42201,
            "recrd",
        ),
        case(
            "unsatisfiable schema",
            "POST",
            "/subjects/s/versions",
            schema(r#"{"type":"record","name":"L","fields":[{"name":"me","type":"L"}]}"#),
            422,
            42201,
            "L.me",
        ),
        case(
            "bad compatibility",
            "PUT",
            "/config",
            Some(r#"{"compatibility":"SIDEWAYS"}"#.into()),
            422,
            42203,
            "SIDEWAYS",
        ),
    ];
    let mut failures = Vec::new();
    for c in cases {
        let req = Request::builder()
            .method(c.method)
            .uri(c.uri)
            .header("content-type", CONTENT_TYPE)
            .body(c.body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => {
                failures.push(format!(
                    "{}: not JSON: {:?}",
                    c.what,
                    String::from_utf8_lossy(&bytes)
                ));
                continue;
            }
        };
        let got = (
            status.as_u16(),
            body["error_code"].as_u64().unwrap_or(0),
            body["message"].as_str().unwrap_or(""),
        );
        if got.0 != c.status
            || got.1 != c.code
            || !got.2.contains(c.message)
            || ctype != CONTENT_TYPE
            || body.as_object().map(|o| o.len()) != Some(2)
        {
            failures.push(format!(
                "{}: expected ({}, {}, …{}…), got {got:?} {ctype} {body}",
                c.what, c.status, c.code, c.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
