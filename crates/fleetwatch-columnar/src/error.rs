//! The two error types: [`FormatError`] (a codec cannot be built, or a batch cannot be
//! written) and [`RowError`] (one record value is not a row of the schema).

use std::fmt;

/// A schema this format cannot handle, or a batch it cannot write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A column (or nested field) of an Arrow type outside the SQL type mapping.
    #[error("column {column}: unsupported type {data_type} for {format}")]
    UnsupportedType {
        /// Path of the column (`LOC->LAT`).
        column: String,
        /// The Arrow type, as Arrow prints it.
        data_type: String,
        /// The format (`JSON`, `AVRO`, …).
        format: &'static str,
    },
    /// The schema does not fit the format (column count, writer schema, …).
    #[error("{0}")]
    Schema(String),
    /// A value this format cannot write.
    #[error("column {column}, row {row}: {message}")]
    Value {
        /// Path of the column.
        column: String,
        /// Row in the batch.
        row: usize,
        /// What is wrong.
        message: String,
    },
}

/// One record value that is not a row of the schema: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    path: String,
    message: String,
}

impl RowError {
    /// An error not (yet) attached to a column.
    pub fn new(message: impl Into<String>) -> Self {
        RowError {
            path: String::new(),
            message: message.into(),
        }
    }

    /// The same error, one level further out (`LAT` becomes `LOC->LAT`).
    #[must_use]
    pub(crate) fn within(mut self, name: &str) -> Self {
        if self.path.is_empty() {
            self.path = name.to_owned();
        } else {
            self.path = format!("{name}->{}", self.path);
        }
        self
    }

    /// The column path (`LOC->LAT`), empty when the error is about the whole value.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What was wrong (`cannot convert "fast" to DOUBLE`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for RowError {}
