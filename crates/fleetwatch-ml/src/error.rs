//! The errors of the ML crate: each names what and where (column, offset, range, option).

use fleetwatch_core::LogError;

/// Anything training, evaluation, bundles or the registry can refuse.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// An option that is not known, or whose value is not valid.
    #[error("{0}")]
    Options(String),
    /// The data read cannot be used: an empty range, a non-numeric feature, a split
    /// without rows.
    #[error("{0}")]
    Data(String),
    /// A model or alias name that breaks its rule.
    #[error("{0}")]
    Name(String),
    /// A model, version or alias the registry does not hold.
    #[error("{0}")]
    NotFound(String),
    /// A bundle that cannot be read: unknown format version, bad manifest, sha256 mismatch,
    /// a missing or corrupt blob.
    #[error("{0}")]
    Bundle(String),
    /// The log refused or failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The local cache directory.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl MlError {
    /// An [`MlError::Options`].
    pub fn options(message: impl Into<String>) -> Self {
        MlError::Options(message.into())
    }
    /// An [`MlError::Data`].
    pub fn data(message: impl Into<String>) -> Self {
        MlError::Data(message.into())
    }
    /// An [`MlError::Bundle`].
    pub fn bundle(message: impl Into<String>) -> Self {
        MlError::Bundle(message.into())
    }
    /// An [`MlError::Io`].
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        MlError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Results of this crate.
pub type MlResult<T> = Result<T, MlError>;
