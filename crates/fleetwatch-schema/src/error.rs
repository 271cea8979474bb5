//! Registry errors with Confluent's error codes.
//!
//! Codes follow Confluent's `Errors.java` where it has one (40401…40409, 409, 42201…42206,
//! 42209, 50001…50003); the HTTP status is the code's first three digits, except that a
//! retriable log error answers 503 (so that clients and proxies retry). Choices where
//! Confluent has no code of its own:
//!
//! | case | code | why |
//! |---|---|---|
//! | ids exhausted (the highest id is 2^31-1) | 42205 | refused, not broken: retrying does not help, nothing was written |
//! | versions of a subject exhausted | 42205 | same |
//! | an imported id ≤ 0 | 42205 | Confluent refuses it as an operation not permitted |
//! | a malformed request (body, path or query) | 40001 | Confluent answers these with a bare 400 |
//! | the log failed, retriable ([`LogError::is_retriable`]) | 50002 (HTTP 503) | Confluent's "operation timed out" |
//! | the log failed otherwise (an invariant, damage) | 50001 | Confluent's "error in the backend datastore" |

use fleetwatch_core::LogError;
use thiserror::Error;

/// What went wrong, with Confluent Schema Registry's error code (see [`RegistryError::code`]).
#[derive(Debug, Error)]
pub enum RegistryError {
    /// 40401
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402
    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound {
        /// Subject.
        subject: String,
        /// Asked version.
        version: String,
    },
    /// 40403
    #[error("Schema {0} not found")]
    SchemaNotFound(String),
    /// 40404
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406
    #[error(
        "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted {
        /// Subject.
        subject: String,
        /// Version.
        version: i32,
    },
    /// 40407
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted {
        /// Subject.
        subject: String,
        /// Version.
        version: i32,
    },
    /// 40408
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    ConfigNotSet(String),
    /// 40409
    #[error("Subject '{0}' does not have subject-level mode configured")]
    ModeNotSet(String),
    /// 409
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", .reasons.join(", "))]
    Incompatible {
        /// Subject.
        subject: String,
        /// Why, one reason per rule broken.
        reasons: Vec<String>,
    },
    /// 42201
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 42202
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// 42203
    #[error(
        "Invalid compatibility level {0:?}. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibilityLevel(String),
    /// 42204
    #[error("Invalid mode {0:?}. Valid values are READWRITE, READONLY and IMPORT")]
    InvalidMode(String),
    /// 42205
    #[error("{0}")]
    OperationNotPermitted(String),
    /// 42205: the highest schema id (2^31-1) is taken, so no id can be allocated.
    #[error(
        "No schema id is left: ids are allocated after the highest one, {0}, and 2147483647 (2^31-1) is the largest; import further schemas with explicit ids below it"
    )]
    IdsExhausted(i32),
    /// 42205: the subject's highest version is 2^31-1.
    #[error(
        "Subject '{0}' already has version 2147483647 (2^31-1): no later version can be allocated"
    )]
    VersionsExhausted(String),
    /// 42205: an imported id that is not positive.
    #[error("Invalid schema id {0}: imported ids must be between 1 and 2^31-1")]
    InvalidId(i32),
    /// 42206
    #[error("One or more references exist to the schema {{subject={subject},version={version}}}")]
    ReferenceExists {
        /// Subject.
        subject: String,
        /// Version.
        version: i32,
    },
    /// 42209: the schema's record is larger than `_schemas` accepts.
    #[error(
        "Schema too large: its record of {size} bytes exceeds the limit of {limit} bytes of the _schemas topic"
    )]
    SchemaTooLarge {
        /// Record size in bytes.
        size: usize,
        /// The topic's limit in bytes.
        limit: usize,
    },
    /// 40001 (not Confluent's: a malformed request body)
    #[error("{0}")]
    BadRequest(String),
    /// 50001: the registry could not encode its own record (an invariant).
    #[error("Error in the backend datastore: {0}")]
    Store(String),
    /// The log holding `_schemas` failed: 50002 (HTTP 503) when
    /// [`LogError::is_retriable`], else 50001.
    #[error("Error in the backend datastore: {0}")]
    Log(#[source] LogError),
    /// 50003
    #[error(
        "This registry is not the leader (schema_registry.leader = false) and cannot forward writes: send them to the leader"
    )]
    NotLeader,
    /// Data in the wire format that does not check out (not an HTTP error).
    #[error("{0}")]
    Wire(String),
}

impl RegistryError {
    /// Confluent's `error_code`.
    pub fn code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound { .. } => 40402,
            RegistryError::SchemaNotFound(_) => 40403,
            RegistryError::SubjectSoftDeleted(_) => 40404,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionSoftDeleted { .. } => 40406,
            RegistryError::VersionNotSoftDeleted { .. } => 40407,
            RegistryError::ConfigNotSet(_) => 40408,
            RegistryError::ModeNotSet(_) => 40409,
            RegistryError::Incompatible { .. } => 409,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibilityLevel(_) => 42203,
            RegistryError::InvalidMode(_) => 42204,
            RegistryError::OperationNotPermitted(_) => 42205,
            RegistryError::IdsExhausted(_)
            | RegistryError::VersionsExhausted(_)
            | RegistryError::InvalidId(_) => 42205,
            RegistryError::ReferenceExists { .. } => 42206,
            RegistryError::SchemaTooLarge { .. } => 42209,
            RegistryError::BadRequest(_) => 40001,
            RegistryError::Store(_) => 50001,
            RegistryError::Log(e) if e.is_retriable() => 50002,
            RegistryError::Log(_) => 50001,
            RegistryError::NotLeader => 50003,
            RegistryError::Wire(_) => 42201,
        }
    }

    /// Whether the same request may succeed when retried (the log was unavailable or busy).
    pub fn is_retriable(&self) -> bool {
        matches!(self, RegistryError::Log(e) if e.is_retriable())
    }

    /// The HTTP status that goes with [`RegistryError::code`] (503 when retriable).
    pub fn http_status(&self) -> u16 {
        if self.is_retriable() {
            return 503;
        }
        let c = self.code();
        if c < 1000 { c as u16 } else { (c / 100) as u16 }
    }
}

impl From<LogError> for RegistryError {
    fn from(e: LogError) -> Self {
        RegistryError::Log(e)
    }
}

/// Result of a registry operation.
pub type RegistryResult<T> = Result<T, RegistryError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn log_errors_keep_their_source_and_map_by_retriability() {
        let cases = [
            (LogError::Timeout("append".into()), 50002, 503, true),
            (LogError::Backend("broker down".into()), 50002, 503, true),
            (
                LogError::internal("offsets out of order"),
                50001,
                500,
                false,
            ),
            (LogError::Closed, 50001, 500, false),
        ];
        for (log, code, status, retriable) in cases {
            let text = log.to_string();
            let e = RegistryError::from(log);
            assert_eq!(
                (e.code(), e.http_status(), e.is_retriable()),
                (code, status, retriable),
                "{e}"
            );
            let source = e.source().expect("the LogError is the source");
            assert_eq!(source.to_string(), text);
            assert!(source.downcast_ref::<LogError>().is_some());
        }
    }

    #[test]
    fn codes_and_statuses() {
        let cases: Vec<(RegistryError, u32, u16)> = vec![
            (RegistryError::IdsExhausted(i32::MAX), 42205, 422),
            (RegistryError::VersionsExhausted("s".into()), 42205, 422),
            (RegistryError::InvalidId(0), 42205, 422),
            (
                RegistryError::SchemaTooLarge { size: 2, limit: 1 },
                42209,
                422,
            ),
            (
                RegistryError::Incompatible {
                    subject: "s".into(),
                    reasons: vec![],
                },
                409,
                409,
            ),
            (RegistryError::NotLeader, 50003, 500),
            (RegistryError::BadRequest("x".into()), 40001, 400),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.code(), e.http_status()), (code, status), "{e}");
        }
    }
}
