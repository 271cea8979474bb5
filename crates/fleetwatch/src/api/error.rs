//! The one error → HTTP mapping of the REST API, in Confluent REST Proxy's shape:
//! `{"error_code": 40401, "message": "…"}`.
//!
//! | HTTP | error_code | meaning |
//! |------|-----------|---------|
//! | 400 | 40001 | malformed request body (bad JSON, wrong shape) |
//! | 400 | 40002 | invalid parameter (offset, partition, timeout…) |
//! | 404 | 40401 | topic not found |
//! | 404 | 40402 | partition not found |
//! | 404 | 40403 | consumer instance not found |
//! | 409 | 40901 | topic already exists |
//! | 409 | 40902 | consumer instance already exists |
//! | 409 | 40903 | consumer not subscribed / stale group member |
//! | 413 | 41301 | record or request body too large |
//! | 415 | 41501 | unsupported content type or embedded format |
//! | 416 | 41601 | offset out of range |
//! | 422 | 42201 | invalid topic name or topic configuration |
//! | 422 | 42203 | key or value cannot be converted (e.g. bad base64) |
//! | 500 | 50001 | storage error |
//! | 503 | 50301 | backend unavailable or timed out |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fleetwatch_core::LogError;
use serde::{Deserialize, Serialize};

/// The error body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Confluent-style code: HTTP status × 100 + detail.
    pub error_code: u32,
    /// What was wrong, and where.
    pub message: String,
}

/// An API error: status and body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, error_code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error_code,
                message: message.into(),
            },
        }
    }

    /// 400 / 40001.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 40001, message)
    }

    /// 400 / 40002.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 40002, message)
    }

    /// 404 / 40403.
    pub fn no_instance(group: &str, instance: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40403,
            format!(
                "consumer instance {instance:?} of group {group:?} not found (deleted, or expired after inactivity)"
            ),
        )
    }

    /// 415 / 41501.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, 41501, message)
    }

    /// 422 / 42203.
    pub fn conversion(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42203, message)
    }

    /// The Confluent-style code.
    pub fn code(&self) -> u32 {
        self.body.error_code
    }
}

/// The HTTP status and error code of a log error.
pub fn status_and_code(e: &LogError) -> (StatusCode, u32) {
    match e {
        LogError::UnknownTopic(_) => (StatusCode::NOT_FOUND, 40401),
        LogError::UnknownPartition { .. } => (StatusCode::NOT_FOUND, 40402),
        LogError::TopicExists(_) => (StatusCode::CONFLICT, 40901),
        LogError::UnknownMember { .. } | LogError::IllegalGeneration { .. } => {
            (StatusCode::CONFLICT, 40903)
        }
        LogError::RecordTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, 41301),
        LogError::OffsetOutOfRange { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, 41601),
        LogError::InvalidTopicName { .. } | LogError::Invalid { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, 42201)
        }
        LogError::Unsupported(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
        LogError::Timeout(_) | LogError::Backend(_) | LogError::Closed => {
            (StatusCode::SERVICE_UNAVAILABLE, 50301)
        }
        LogError::InternalTopic { .. } => (StatusCode::FORBIDDEN, 40301),
        LogError::Corrupt { .. } | LogError::Io { .. } | LogError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, 50001)
        }
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        let msg = e.to_string();
        let (status, code) = status_and_code(&e);
        if status.is_server_error() {
            tracing::error!(error = %msg, "request failed");
        }
        ApiError::new(status, code, msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
