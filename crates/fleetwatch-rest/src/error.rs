//! The one error → HTTP mapping of the REST Proxy API, in Confluent REST Proxy's shape:
//! `{"error_code": 40401, "message": "…"}`. Every code the API can answer is a [`Code`];
//! its HTTP status and its meaning are written once, here, and the README's table is checked
//! against [`Code::ALL`] by a test.

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

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $status:ident, $meaning:literal;)*) => {
        /// Every error code of the REST Proxy API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The number in `error_code`.
            pub fn number(self) -> u32 {
                match self { $(Code::$name => $code,)* }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> StatusCode {
                match self { $(Code::$name => StatusCode::$status,)* }
            }

            /// What it means (the README table's text).
            pub fn meaning(self) -> &'static str {
                match self { $(Code::$name => $meaning,)* }
            }
        }
    };
}

codes! {
    /// 40001
    MalformedBody = 40001, BAD_REQUEST, "malformed request body (bad JSON, wrong shape, a path or query parameter that does not parse)";
    /// 40002
    InvalidParam = 40002, BAD_REQUEST, "invalid parameter (negative offset, empty list…)";
    /// 40301
    InternalTopic = 40301, FORBIDDEN, "the topic is internal (`__*`, `_schemas`, `_fw_*`): no delete, produce, creation or config change";
    /// 40400
    NoEndpoint = 40400, NOT_FOUND, "no such endpoint";
    /// 40401
    TopicNotFound = 40401, NOT_FOUND, "topic not found";
    /// 40402
    PartitionNotFound = 40402, NOT_FOUND, "partition not found";
    /// 40403
    InstanceNotFound = 40403, NOT_FOUND, "consumer instance not found";
    /// 40404
    ClusterNotFound = 40404, NOT_FOUND, "cluster not found (the only cluster is `fleetwatch`)";
    /// 40405
    GroupNotFound = 40405, NOT_FOUND, "consumer group not found";
    /// 40500
    MethodNotAllowed = 40500, METHOD_NOT_ALLOWED, "method not allowed on this endpoint";
    /// 40601
    NotAcceptable = 40601, NOT_ACCEPTABLE, "the Accept header asks for another format than the consumer's";
    /// 40901
    TopicExists = 40901, CONFLICT, "topic already exists";
    /// 40902
    InstanceExists = 40902, CONFLICT, "consumer instance already exists";
    /// 40903
    NotSubscribed = 40903, CONFLICT, "consumer not subscribed, or no longer a member of its group's current generation";
    /// 41301
    TooLarge = 41301, PAYLOAD_TOO_LARGE, "record or request body too large";
    /// 41302
    TooManyRecords = 41302, PAYLOAD_TOO_LARGE, "more records in one request than `http.max_records_per_request`";
    /// 41501
    UnsupportedMedia = 41501, UNSUPPORTED_MEDIA_TYPE, "unsupported content type or embedded format";
    /// 41601
    OffsetOutOfRange = 41601, RANGE_NOT_SATISFIABLE, "offset out of range (seek or fetch outside the partition's offsets)";
    /// 42201
    InvalidTopic = 42201, UNPROCESSABLE_ENTITY, "invalid topic name or topic configuration, or another invalid value";
    /// 42202
    Unsupported = 42202, UNPROCESSABLE_ENTITY, "not supported by this backend";
    /// 42203
    Conversion = 42203, UNPROCESSABLE_ENTITY, "key, value or header cannot be converted (bad base64…)";
    /// 42204
    InvalidConsumerConfig = 42204, UNPROCESSABLE_ENTITY, "invalid consumer setting (format, auto.offset.reset, auto.commit.enable)";
    /// 43100
    HeadersTooLarge = 43100, REQUEST_HEADER_FIELDS_TOO_LARGE, "request head (URI and headers) too large";
    /// 50001
    Storage = 50001, INTERNAL_SERVER_ERROR, "storage error, damaged data or a broken invariant (a bug)";
    /// 50301
    Unavailable = 50301, SERVICE_UNAVAILABLE, "backend unavailable or timed out: retry";
}

impl Code {
    /// The README's table of every code.
    pub fn markdown_table() -> String {
        let mut t = String::from("| HTTP | error_code | meaning |\n|---|---|---|\n");
        for c in Code::ALL {
            t.push_str(&format!(
                "| {} | {} | {} |\n",
                c.status().as_u16(),
                c.number(),
                c.meaning()
            ));
        }
        t
    }

    /// The code for an HTTP status that has no more specific one (the common layers' errors).
    pub fn for_status(status: StatusCode) -> Code {
        match status.as_u16() {
            404 => Code::NoEndpoint,
            405 => Code::MethodNotAllowed,
            413 => Code::TooLarge,
            415 => Code::UnsupportedMedia,
            431 => Code::HeadersTooLarge,
            s if s >= 500 => Code::Storage,
            _ => Code::MalformedBody,
        }
    }
}

/// An API error: a code and a message.
#[derive(Debug)]
pub struct ApiError {
    code: Code,
    message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// 40001.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(Code::MalformedBody, message)
    }

    /// 40002.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidParam, message)
    }

    /// 40403.
    pub fn no_instance(group: &str, instance: &str) -> Self {
        Self::new(
            Code::InstanceNotFound,
            format!(
                "consumer instance {instance:?} of group {group:?} not found (deleted, or expired after inactivity)"
            ),
        )
    }

    /// 41501.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(Code::UnsupportedMedia, message)
    }

    /// 42203.
    pub fn conversion(message: impl Into<String>) -> Self {
        Self::new(Code::Conversion, message)
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The code of a log error.
pub fn code_of(e: &LogError) -> Code {
    match e {
        LogError::UnknownTopic(_) => Code::TopicNotFound,
        LogError::UnknownPartition { .. } => Code::PartitionNotFound,
        LogError::TopicExists(_) => Code::TopicExists,
        LogError::UnknownMember { .. } | LogError::IllegalGeneration { .. } => Code::NotSubscribed,
        LogError::RecordTooLarge { .. } => Code::TooLarge,
        LogError::OffsetOutOfRange { .. } => Code::OffsetOutOfRange,
        LogError::InvalidTopicName { .. } | LogError::Invalid { .. } => Code::InvalidTopic,
        LogError::InternalTopic { .. } => Code::InternalTopic,
        LogError::Unsupported(_) => Code::Unsupported,
        LogError::Timeout(_) | LogError::Backend(_) | LogError::Closed => Code::Unavailable,
        LogError::Corrupt { .. } | LogError::Io { .. } | LogError::Internal(_) => {
            if e.is_retriable() {
                Code::Unavailable
            } else {
                Code::Storage
            }
        }
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        let msg = e.to_string();
        let code = code_of(&e);
        if code.status().is_server_error() {
            tracing::error!(error = %msg, "request failed");
        }
        ApiError::new(code, msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.code.status(),
            Json(ErrorBody {
                error_code: self.code.number(),
                message: self.message,
            }),
        )
            .into_response()
    }
}

/// This API's error shape for the common HTTP layers (405, 413, 431, stray rejections).
pub fn shape(status: StatusCode, message: String) -> Response {
    let code = Code::for_status(status);
    let mut resp = ApiError::new(code, message).into_response();
    *resp.status_mut() = status;
    resp
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_is_its_status_times_100_plus_detail_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert_eq!(c.number() / 100, u32::from(c.status().as_u16()), "{c:?}");
            assert!(seen.insert(c.number()), "{c:?} twice");
        }
    }

    /// The README's error table is exactly [`Code::markdown_table`].
    #[test]
    fn readme_table_matches_the_codes() {
        let readme = include_str!("../../../README.md");
        let (begin, end) = ("<!-- rest-error-codes -->\n", "<!-- /rest-error-codes -->");
        let start = readme
            .find(begin)
            .expect("README lacks the rest-error-codes markers")
            + begin.len();
        let stop = readme[start..]
            .find(end)
            .expect("README lacks the closing marker")
            + start;
        assert_eq!(
            &readme[start..stop],
            Code::markdown_table(),
            "README's REST error table is out of date; paste the right side between the markers"
        );
    }
}
