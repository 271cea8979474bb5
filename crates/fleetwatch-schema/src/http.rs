//! The REST API, with Confluent Schema Registry's paths, bodies and error codes, so that
//! `confluent-kafka`'s `SchemaRegistryClient` and serializers work unchanged. Errors are
//! `{"error_code": …, "message": …}`; query booleans are read case-insensitively (the
//! Python client sends `True`/`False`).

use crate::error::RegistryError;
use crate::registry::Registry;
use crate::types::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// Content type of every response.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

struct ApiError(RegistryError);

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "schema registry request failed");
        }
        reply(
            status,
            &json!({"error_code": self.0.code(), "message": self.0.to_string()}),
        )
    }
}

type ApiResult = Result<Response, ApiError>;

fn reply<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response()
}

fn ok<T: Serialize>(body: &T) -> ApiResult {
    Ok(reply(StatusCode::OK, body))
}

/// Query parameters used across endpoints; booleans are strings compared case-insensitively.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    permanent: Option<String>,
    deleted: Option<String>,
    normalize: Option<String>,
    verbose: Option<String>,
    default_to_global: Option<String>,
    subject_prefix: Option<String>,
    latest_only: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError(RegistryError::BadRequest(format!(
            "invalid request body: {e}"
        )))
    })
}

type S = State<Arc<Registry>>;

async fn root() -> Response {
    reply(StatusCode::OK, &json!({}))
}

async fn subjects(State(r): S, Query(q): Query<Params>) -> ApiResult {
    ok(&r.subjects(q.subject_prefix.as_deref(), flag(&q.deleted)))
}

async fn register(
    State(r): S,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
    b: Bytes,
) -> ApiResult {
    let req: RegisterRequest = body(&b)?;
    let id = r.register(&subject, &req, flag(&q.normalize)).await?;
    ok(&json!({"id": id}))
}

async fn lookup(
    State(r): S,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
    b: Bytes,
) -> ApiResult {
    let req: RegisterRequest = body(&b)?;
    ok(&r.lookup(&subject, &req, flag(&q.normalize), flag(&q.deleted))?)
}

/// `GET /subjects/{s}` (a fleetwatch convenience): the subject's latest version.
async fn latest_of_subject(
    State(r): S,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult {
    ok(&r.get_version(&subject, "latest", flag(&q.deleted))?)
}

async fn delete_subject(
    State(r): S,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult {
    ok(&r.delete_subject(&subject, flag(&q.permanent)).await?)
}

async fn versions(State(r): S, Path(subject): Path<String>, Query(q): Query<Params>) -> ApiResult {
    ok(&r.versions(&subject, flag(&q.deleted))?)
}

async fn get_version(
    State(r): S,
    Path((subject, v)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> ApiResult {
    ok(&r.get_version(&subject, &v, flag(&q.deleted))?)
}

async fn get_version_schema(
    State(r): S,
    Path((subject, v)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> ApiResult {
    let sv = r.get_version(&subject, &v, flag(&q.deleted))?;
    // The raw schema document, as Confluent returns it.
    let doc: serde_json::Value =
        serde_json::from_str(&sv.schema).unwrap_or(serde_json::Value::String(sv.schema));
    ok(&doc)
}

async fn referenced_by(State(r): S, Path((subject, v)): Path<(String, String)>) -> ApiResult {
    ok(&r.referenced_by(&subject, &v)?)
}

async fn delete_version(
    State(r): S,
    Path((subject, v)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> ApiResult {
    ok(&r.delete_version(&subject, &v, flag(&q.permanent)).await?)
}

fn parse_id(id: &str) -> Result<i32, ApiError> {
    id.parse().map_err(|_| {
        ApiError(RegistryError::SchemaNotFound(format!(
            "{id:?} (ids are positive integers)"
        )))
    })
}

async fn schema_by_id(State(r): S, Path(id): Path<String>) -> ApiResult {
    ok(&r.schema_by_id(parse_id(&id)?)?)
}

async fn schema_by_id_raw(State(r): S, Path(id): Path<String>) -> ApiResult {
    let s = r.schema_by_id(parse_id(&id)?)?;
    let doc: serde_json::Value =
        serde_json::from_str(&s.schema).unwrap_or(serde_json::Value::String(s.schema));
    ok(&doc)
}

async fn subjects_by_id(State(r): S, Path(id): Path<String>, Query(q): Query<Params>) -> ApiResult {
    let mut subjects: Vec<String> = r
        .versions_by_id(parse_id(&id)?, flag(&q.deleted))?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    subjects.dedup();
    ok(&subjects)
}

async fn versions_by_id(State(r): S, Path(id): Path<String>, Query(q): Query<Params>) -> ApiResult {
    let v: Vec<serde_json::Value> = r
        .versions_by_id(parse_id(&id)?, flag(&q.deleted))?
        .into_iter()
        .map(|(s, v)| json!({"subject": s, "version": v}))
        .collect();
    ok(&v)
}

async fn schema_types() -> Response {
    reply(StatusCode::OK, &json!(["JSON", "AVRO"]))
}

async fn schemas(State(r): S, Query(q): Query<Params>) -> ApiResult {
    ok(&r.schemas(
        q.subject_prefix.as_deref(),
        flag(&q.deleted),
        flag(&q.latest_only),
    ))
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

async fn get_global_config(State(r): S) -> ApiResult {
    ok(&json!({"compatibilityLevel": r.get_config(None, true)?}))
}

async fn put_config(r: &Registry, subject: Option<&str>, b: &Bytes) -> ApiResult {
    let c: ConfigBody = body(b)?;
    let level = c
        .compatibility
        .or(c.compatibility_level)
        .ok_or_else(|| ApiError(RegistryError::InvalidCompatibilityLevel("(missing)".into())))?;
    let level = Compatibility::parse(&level)?;
    r.set_config(subject, level).await?;
    ok(&json!({"compatibility": level}))
}

async fn put_global_config(State(r): S, b: Bytes) -> ApiResult {
    put_config(&r, None, &b).await
}

async fn delete_global_config(State(r): S) -> ApiResult {
    ok(&json!({"compatibilityLevel": r.delete_config(None).await?}))
}

async fn get_subject_config(
    State(r): S,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult {
    ok(&json!({"compatibilityLevel": r.get_config(Some(&subject), flag(&q.default_to_global))?}))
}

async fn put_subject_config(State(r): S, Path(subject): Path<String>, b: Bytes) -> ApiResult {
    put_config(&r, Some(&subject), &b).await
}

async fn delete_subject_config(State(r): S, Path(subject): Path<String>) -> ApiResult {
    ok(&json!({"compatibilityLevel": r.delete_config(Some(&subject)).await?}))
}

#[derive(Deserialize)]
struct ModeBody {
    mode: String,
}

async fn get_global_mode(State(r): S) -> ApiResult {
    ok(&json!({"mode": r.get_mode(None, true)?}))
}

async fn put_mode(r: &Registry, subject: Option<&str>, b: &Bytes) -> ApiResult {
    let m: ModeBody = body(b)?;
    let mode = Mode::parse(&m.mode)?;
    r.set_mode(subject, mode).await?;
    ok(&json!({"mode": mode}))
}

async fn put_global_mode(State(r): S, b: Bytes) -> ApiResult {
    put_mode(&r, None, &b).await
}

async fn get_subject_mode(
    State(r): S,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult {
    ok(&json!({"mode": r.get_mode(Some(&subject), flag(&q.default_to_global))?}))
}

async fn put_subject_mode(State(r): S, Path(subject): Path<String>, b: Bytes) -> ApiResult {
    put_mode(&r, Some(&subject), &b).await
}

async fn delete_subject_mode(State(r): S, Path(subject): Path<String>) -> ApiResult {
    ok(&json!({"mode": r.delete_mode(&subject).await?}))
}

async fn compat_all(
    State(r): S,
    Path(subject): Path<String>,
    Query(q): Query<Params>,
    b: Bytes,
) -> ApiResult {
    let req: RegisterRequest = body(&b)?;
    let mut res = r.check_compatibility(&subject, None, &req, flag(&q.normalize))?;
    if !flag(&q.verbose) {
        res.messages.clear();
    }
    ok(&res)
}

async fn compat_version(
    State(r): S,
    Path((subject, v)): Path<(String, String)>,
    Query(q): Query<Params>,
    b: Bytes,
) -> ApiResult {
    let req: RegisterRequest = body(&b)?;
    let res = r.check_compatibility(&subject, Some(&v), &req, flag(&q.normalize));
    let mut res = match res {
        // Checking against a subject with no versions yet is compatible.
        Err(RegistryError::SubjectNotFound(_)) if v == "latest" => CompatibilityResult {
            is_compatible: true,
            messages: Vec::new(),
        },
        other => other?,
    };
    if !flag(&q.verbose) {
        res.messages.clear();
    }
    ok(&res)
}

async fn contexts() -> Response {
    reply(StatusCode::OK, &json!(["."]))
}

/// Data-contract associations (newer clients ask before producing): none are kept.
async fn associations() -> Response {
    reply(StatusCode::OK, &json!([]))
}

async fn not_found(uri: axum::http::Uri) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        &json!({"error_code": 404, "message": format!("HTTP 404 Not Found: {}", uri.path())}),
    )
}

/// The router of the Schema Registry API.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/subjects", get(subjects))
        .route(
            "/subjects/{subject}",
            get(latest_of_subject).post(lookup).delete(delete_subject),
        )
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route("/schemas", get(schemas))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_by_id_raw))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route("/mode", get(get_global_mode).put(put_global_mode))
        .route(
            "/mode/{subject}",
            get(get_subject_mode)
                .put(put_subject_mode)
                .delete(delete_subject_mode),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compat_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compat_version),
        )
        .route("/contexts", get(contexts))
        .route(
            "/associations/resources/{context}/{resource}",
            get(associations),
        )
        .fallback(not_found)
        .with_state(registry)
}
