//! The SQL layer's errors.

use crate::parser::ParseError;

/// What can go wrong running a statement.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The text is not valid SQL (line, column, what was expected).
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// The statement is valid SQL but cannot run: unknown stream, column or function, a
    /// type that does not fit, a property that is wrong.
    #[error("{0}")]
    Statement(String),
    /// A statement names something that does not exist (404-like).
    #[error("{0}")]
    NotFound(String),
    /// The log failed.
    #[error("log: {0}")]
    Log(#[from] fleetwatch_core::LogError),
    /// Anything else (a bug, or an unexpected state).
    #[error("{0}")]
    Internal(String),
}

impl SqlError {
    /// A statement error.
    pub fn statement(m: impl Into<String>) -> SqlError {
        SqlError::Statement(m.into())
    }
}

impl From<datafusion_common::DataFusionError> for SqlError {
    fn from(e: datafusion_common::DataFusionError) -> Self {
        SqlError::Statement(clean_datafusion(&e))
    }
}

/// DataFusion's message without its internal prefixes (`Error during planning: `…).
pub fn clean_datafusion(e: &datafusion_common::DataFusionError) -> String {
    let s = e.strip_backtrace();
    let mut s = s.as_str();
    for p in [
        "Error during planning: ",
        "Execution error: ",
        "Schema error: ",
        "This feature is not implemented: ",
        "Optimizer rule 'type_coercion' failed\ncaused by\n",
        "type_coercion\ncaused by\n",
    ] {
        while let Some(rest) = s.strip_prefix(p) {
            s = rest;
        }
        if let Some(i) = s.find(p) {
            s = &s[i + p.len()..];
        }
    }
    let s = s.trim();
    // DataFusion names an unknown function in lower case; the user wrote it upper-cased.
    if let Some(rest) = s.strip_prefix("Invalid function '")
        && let Some((name, tail)) = rest.split_once('\'')
    {
        return format!(
            "Can't find any functions with the name '{}'{}",
            name.to_uppercase(),
            tail.trim_start_matches('.')
        );
    }
    s.to_string()
}

/// Results of this crate.
pub type SqlResult<T> = Result<T, SqlError>;
