//! The error every `Log` operation returns.

use thiserror::Error;

/// Result of a `Log` operation.
pub type LogResult<T> = Result<T, LogError>;

/// What went wrong in a `Log` operation; each variant names what and where.
#[derive(Debug, Error)]
pub enum LogError {
    /// A topic name that breaks Kafka's rule `[A-Za-z0-9._-]{1,249}`.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A bad argument or configuration value.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The thing that was invalid (e.g. "partition count", "group id").
        what: String,
        /// Why.
        reason: String,
    },
    /// The topic does not exist.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// The topic exists already.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// The partition does not exist in the topic.
    #[error("topic {topic:?} has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        /// Topic.
        topic: String,
        /// Asked partition.
        partition: i32,
        /// How many the topic has.
        partitions: i32,
    },
    /// An offset outside `[log_start, high_watermark]`.
    #[error(
        "offset {offset} is out of range for {topic}-{partition} (valid: {log_start}..={high_watermark})"
    )]
    OffsetOutOfRange {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Asked offset.
        offset: i64,
        /// First offset still in the log.
        log_start: i64,
        /// Next offset to be written.
        high_watermark: i64,
    },
    /// A record larger than the topic's limit.
    #[error("record of {size} bytes exceeds the limit of {limit} bytes for topic {topic:?}")]
    RecordTooLarge {
        /// Topic.
        topic: String,
        /// Record size in bytes.
        size: usize,
        /// Limit in bytes.
        limit: usize,
    },
    /// The consumer-group member is unknown to the coordinator (evicted or left).
    #[error(
        "member {member:?} is not in group {group:?} (evicted after its session timeout, or left)"
    )]
    UnknownMember {
        /// Group.
        group: String,
        /// Member id.
        member: String,
    },
    /// A commit from an older generation than the group's current one.
    #[error("generation {generation} of group {group:?} is stale (current: {current}); rejoin")]
    IllegalGeneration {
        /// Group.
        group: String,
        /// Generation the caller used.
        generation: i32,
        /// The group's current generation.
        current: i32,
    },
    /// Data on disk failed its checksum or could not be decoded.
    #[error("corrupt data in {location}: {reason}")]
    Corrupt {
        /// File and position.
        location: String,
        /// What did not check out.
        reason: String,
    },
    /// An I/O error from storage, with what was being done.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the log was doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The backend (e.g. a Kafka cluster) is unavailable or reported a transient error;
    /// the same operation may succeed when retried.
    #[error("backend error: {0}")]
    Backend(String),
    /// A storage or program invariant did not hold (a bug or damaged state, not bad input);
    /// retrying does not help.
    #[error("internal error: {0}")]
    Internal(String),
    /// The operation is not allowed on an internal topic (see [`crate::is_internal_topic`]).
    #[error("topic {topic:?} is internal to fleetwatch: {operation} is not allowed on it")]
    InternalTopic {
        /// The internal topic.
        topic: String,
        /// What was refused ("delete", "produce", "config change").
        operation: String,
    },
    /// The operation is not supported by this backend or broker.
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
    /// The operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The log is shutting down or has been closed.
    #[error("the log is closed")]
    Closed,
}

impl LogError {
    /// Whether the same operation may succeed if retried unchanged: the backend was
    /// unavailable, busy or timed out. Invalid input, unknown names, damaged data and broken
    /// invariants are not retriable. An MQTT PUBACK decision (drop the connection so the
    /// device resends, or refuse) and a sink's retry loop depend on this.
    pub fn is_retriable(&self) -> bool {
        match self {
            LogError::Backend(_) | LogError::Timeout(_) => true,
            LogError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::QuotaExceeded
                    | std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
            ),
            LogError::InvalidTopicName { .. }
            | LogError::Invalid { .. }
            | LogError::UnknownTopic(_)
            | LogError::TopicExists(_)
            | LogError::UnknownPartition { .. }
            | LogError::OffsetOutOfRange { .. }
            | LogError::RecordTooLarge { .. }
            | LogError::UnknownMember { .. }
            | LogError::IllegalGeneration { .. }
            | LogError::Corrupt { .. }
            | LogError::Internal(_)
            | LogError::InternalTopic { .. }
            | LogError::Unsupported(_)
            | LogError::Closed => false,
        }
    }

    /// An [`LogError::Internal`].
    pub fn internal(what: impl std::fmt::Display) -> Self {
        LogError::Internal(what.to_string())
    }

    /// An [`LogError::Io`] with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LogError::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`LogError::Invalid`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        LogError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_is_only_transient_trouble() {
        assert!(LogError::Backend("broker down".into()).is_retriable());
        assert!(LogError::Timeout("append".into()).is_retriable());
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(LogError::io("appending", full).is_retriable());
        let eio = std::io::Error::from_raw_os_error(5);
        assert!(!LogError::io("appending", eio).is_retriable());
        assert!(!LogError::internal("index out of order").is_retriable());
        assert!(!LogError::UnknownTopic("t".into()).is_retriable());
        assert!(!LogError::Closed.is_retriable());
    }
}
