//! The REST API, with Confluent Schema Registry's paths, bodies and error codes, so that
//! `confluent-kafka`'s `SchemaRegistryClient` and serializers work unchanged.
//!
//! Every error is `{"error_code": …, "message": …}` — one mechanism: handlers take the
//! crate's own extractors ([`PathParams`], [`QueryParams`], [`JsonBody`]), whose rejections
//! are [`ApiError`]s, and the router's fallbacks answer unknown paths (404, code 404, as
//! Confluent's Jersey does) and methods (405, code 405). Malformed paths, query strings and
//! bodies are 400 with code 40001; a body over [`MAX_BODY_BYTES`] is 413 (code 413) naming
//! the limit; a schema whose record is larger than `_schemas` accepts is 422 42209.
//!
//! Query booleans are `true` or `false`, case-insensitively (the Python client sends
//! `True`/`False`); anything else is a 400 naming the parameter.

use crate::error::RegistryError;
use crate::registry::Registry;
use crate::types::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// Content type of every response.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The largest request body read (4 MiB): room for a schema of the `_schemas` record limit
/// (1 MiB by default) escaped inside JSON; a larger schema is refused by the log's limit
/// with 42209, a larger body with 413.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// An error of this API: a registry error, or one of the HTTP layer (unknown path or method,
/// a body over the limit), each answered in Confluent's shape.
#[derive(Debug)]
pub enum ApiError {
    /// From the registry (its own code and status).
    Registry(RegistryError),
    /// From the HTTP layer: status, `error_code`, message.
    Http(StatusCode, u32, String),
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::Registry(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Registry(e) => {
                let status = StatusCode::from_u16(e.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if status.is_server_error() {
                    tracing::error!(error = %e, "schema registry request failed");
                }
                (status, e.code(), e.to_string())
            }
            ApiError::Http(status, code, message) => (status, code, message),
        };
        reply(status, &json!({"error_code": code, "message": message}))
    }
}

fn bad_request(message: String) -> ApiError {
    ApiError::Registry(RegistryError::BadRequest(message))
}

/// Path parameters (axum's `Path`, its rejection in this API's shape).
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(PathParams(t)),
            Err(e) if e.status().is_server_error() => Err(ApiError::Http(
                e.status(),
                50001,
                format!("path parameters: {}", e.body_text()),
            )),
            Err(e) => Err(bad_request(format!(
                "invalid path {}: {}",
                parts.uri.path(),
                e.body_text()
            ))),
        }
    }
}

/// The query string, its booleans checked (see the module doc).
pub struct QueryParams(Params);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<Params>::from_request_parts(parts, state)
            .await
            .map_err(|e| bad_request(format!("invalid query string: {}", e.body_text())))?;
        for (name, v) in [
            ("permanent", &q.permanent),
            ("deleted", &q.deleted),
            ("normalize", &q.normalize),
            ("verbose", &q.verbose),
            ("defaultToGlobal", &q.default_to_global),
            ("latestOnly", &q.latest_only),
        ] {
            if let Some(v) = v
                && !v.eq_ignore_ascii_case("true")
                && !v.eq_ignore_ascii_case("false")
            {
                return Err(bad_request(format!(
                    "invalid query parameter {name}={v:?}: expected true or false"
                )));
            }
        }
        Ok(QueryParams(q))
    }
}

/// A JSON request body of at most [`MAX_BODY_BYTES`].
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::Http(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    413,
                    format!("request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
                )
            } else {
                bad_request(format!("invalid request body: {}", e.body_text()))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| bad_request(format!("invalid request body: {e}")))
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

type S = State<Arc<Registry>>;

async fn root() -> Response {
    reply(StatusCode::OK, &json!({}))
}

async fn subjects(State(r): S, QueryParams(q): QueryParams) -> ApiResult {
    ok(&r.subjects(q.subject_prefix.as_deref(), flag(&q.deleted)))
}

async fn register(
    State(r): S,
    PathParams(subject): PathParams<String>,
    QueryParams(q): QueryParams,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> ApiResult {
    let id = r.register(&subject, &req, flag(&q.normalize)).await?;
    ok(&json!({"id": id}))
}

async fn lookup(
    State(r): S,
    PathParams(subject): PathParams<String>,
    QueryParams(q): QueryParams,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> ApiResult {
    ok(&r.lookup(&subject, &req, flag(&q.normalize), flag(&q.deleted))?)
}

/// `GET /subjects/{s}` (a fleetwatch convenience): the subject's latest version.
async fn latest_of_subject(
    State(r): S,
    PathParams(subject): PathParams<String>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    ok(&r.get_version(&subject, "latest", flag(&q.deleted))?)
}

async fn delete_subject(
    State(r): S,
    PathParams(subject): PathParams<String>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    ok(&r.delete_subject(&subject, flag(&q.permanent)).await?)
}

async fn versions(
    State(r): S,
    PathParams(subject): PathParams<String>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    ok(&r.versions(&subject, flag(&q.deleted))?)
}

async fn get_version(
    State(r): S,
    PathParams((subject, v)): PathParams<(String, String)>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    ok(&r.get_version(&subject, &v, flag(&q.deleted))?)
}

async fn get_version_schema(
    State(r): S,
    PathParams((subject, v)): PathParams<(String, String)>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    let sv = r.get_version(&subject, &v, flag(&q.deleted))?;
    // The raw schema document, as Confluent returns it.
    let doc: serde_json::Value =
        serde_json::from_str(&sv.schema).unwrap_or(serde_json::Value::String(sv.schema));
    ok(&doc)
}

async fn referenced_by(
    State(r): S,
    PathParams((subject, v)): PathParams<(String, String)>,
) -> ApiResult {
    ok(&r.referenced_by(&subject, &v)?)
}

async fn delete_version(
    State(r): S,
    PathParams((subject, v)): PathParams<(String, String)>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    ok(&r.delete_version(&subject, &v, flag(&q.permanent)).await?)
}

fn parse_id(id: &str) -> Result<i32, ApiError> {
    id.parse().map_err(|_| {
        ApiError::Registry(RegistryError::SchemaNotFound(format!(
            "{id:?} (ids are positive integers)"
        )))
    })
}

async fn schema_by_id(State(r): S, PathParams(id): PathParams<String>) -> ApiResult {
    ok(&r.schema_by_id(parse_id(&id)?)?)
}

async fn schema_by_id_raw(State(r): S, PathParams(id): PathParams<String>) -> ApiResult {
    let s = r.schema_by_id(parse_id(&id)?)?;
    let doc: serde_json::Value =
        serde_json::from_str(&s.schema).unwrap_or(serde_json::Value::String(s.schema));
    ok(&doc)
}

async fn subjects_by_id(
    State(r): S,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    let mut subjects: Vec<String> = r
        .versions_by_id(parse_id(&id)?, flag(&q.deleted))?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    subjects.dedup();
    ok(&subjects)
}

async fn versions_by_id(
    State(r): S,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams,
) -> ApiResult {
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

async fn schemas(State(r): S, QueryParams(q): QueryParams) -> ApiResult {
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

async fn put_config(r: &Registry, subject: Option<&str>, c: ConfigBody) -> ApiResult {
    let level = c
        .compatibility
        .or(c.compatibility_level)
        .ok_or_else(|| RegistryError::InvalidCompatibilityLevel("(missing)".into()))?;
    let level = Compatibility::parse(&level)?;
    r.set_config(subject, level).await?;
    ok(&json!({"compatibility": level}))
}

async fn put_global_config(State(r): S, JsonBody(c): JsonBody<ConfigBody>) -> ApiResult {
    put_config(&r, None, c).await
}

async fn delete_global_config(State(r): S) -> ApiResult {
    ok(&json!({"compatibilityLevel": r.delete_config(None).await?}))
}

async fn get_subject_config(
    State(r): S,
    PathParams(subject): PathParams<String>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    ok(&json!({"compatibilityLevel": r.get_config(Some(&subject), flag(&q.default_to_global))?}))
}

async fn put_subject_config(
    State(r): S,
    PathParams(subject): PathParams<String>,
    JsonBody(c): JsonBody<ConfigBody>,
) -> ApiResult {
    put_config(&r, Some(&subject), c).await
}

async fn delete_subject_config(State(r): S, PathParams(subject): PathParams<String>) -> ApiResult {
    ok(&json!({"compatibilityLevel": r.delete_config(Some(&subject)).await?}))
}

#[derive(Deserialize)]
struct ModeBody {
    mode: String,
}

async fn get_global_mode(State(r): S) -> ApiResult {
    ok(&json!({"mode": r.get_mode(None, true)?}))
}

async fn put_mode(r: &Registry, subject: Option<&str>, m: ModeBody) -> ApiResult {
    let mode = Mode::parse(&m.mode)?;
    r.set_mode(subject, mode).await?;
    ok(&json!({"mode": mode}))
}

async fn put_global_mode(State(r): S, JsonBody(m): JsonBody<ModeBody>) -> ApiResult {
    put_mode(&r, None, m).await
}

async fn get_subject_mode(
    State(r): S,
    PathParams(subject): PathParams<String>,
    QueryParams(q): QueryParams,
) -> ApiResult {
    ok(&json!({"mode": r.get_mode(Some(&subject), flag(&q.default_to_global))?}))
}

async fn put_subject_mode(
    State(r): S,
    PathParams(subject): PathParams<String>,
    JsonBody(m): JsonBody<ModeBody>,
) -> ApiResult {
    put_mode(&r, Some(&subject), m).await
}

async fn delete_subject_mode(State(r): S, PathParams(subject): PathParams<String>) -> ApiResult {
    ok(&json!({"mode": r.delete_mode(&subject).await?}))
}

async fn compat_all(
    State(r): S,
    PathParams(subject): PathParams<String>,
    QueryParams(q): QueryParams,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> ApiResult {
    let mut res = r.check_compatibility(&subject, None, &req, flag(&q.normalize))?;
    if !flag(&q.verbose) {
        res.messages.clear();
    }
    ok(&res)
}

async fn compat_version(
    State(r): S,
    PathParams((subject, v)): PathParams<(String, String)>,
    QueryParams(q): QueryParams,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> ApiResult {
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

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::Http(
        StatusCode::NOT_FOUND,
        404,
        format!("HTTP 404 Not Found: {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::Http(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        format!("HTTP 405 Method Not Allowed: {method} {}", uri.path()),
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
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(registry)
}
