//! Registry errors with Confluent's error codes.

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
    /// 42206
    #[error("One or more references exist to the schema {{subject={subject},version={version}}}")]
    ReferenceExists {
        /// Subject.
        subject: String,
        /// Version.
        version: i32,
    },
    /// 40001 (not Confluent's: a malformed request body)
    #[error("{0}")]
    BadRequest(String),
    /// 50001
    #[error("Error in the backend datastore: {0}")]
    Store(String),
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
            RegistryError::ReferenceExists { .. } => 42206,
            RegistryError::BadRequest(_) => 40001,
            RegistryError::Store(_) => 50001,
            RegistryError::NotLeader => 50003,
            RegistryError::Wire(_) => 42201,
        }
    }

    /// The HTTP status that goes with [`RegistryError::code`].
    pub fn http_status(&self) -> u16 {
        let c = self.code();
        if c < 1000 { c as u16 } else { (c / 100) as u16 }
    }
}

impl From<fleetwatch_core::LogError> for RegistryError {
    fn from(e: fleetwatch_core::LogError) -> Self {
        RegistryError::Store(e.to_string())
    }
}

/// Result of a registry operation.
pub type RegistryResult<T> = Result<T, RegistryError>;
