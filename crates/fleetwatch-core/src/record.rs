//! Records as Kafka has them: bytes in, bytes out; compute layers decode.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimestampType {
    /// Set by the producer when the record was created.
    #[default]
    CreateTime,
    /// Set by the log when the record was appended.
    LogAppendTime,
}

impl TimestampType {
    /// The one-byte code stored on disk (0 = create, 1 = log-append).
    pub fn code(self) -> u8 {
        match self {
            TimestampType::CreateTime => 0,
            TimestampType::LogAppendTime => 1,
        }
    }

    /// Decodes [`TimestampType::code`]; any other byte is `None`.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(TimestampType::CreateTime),
            1 => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }
}

/// One record header. Headers are ordered and keys may repeat, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header name (UTF-8).
    pub key: String,
    /// Header value; `None` is a null value, distinct from empty bytes.
    pub value: Option<Bytes>,
}

/// A record to append: what a producer sends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Optional key; decides the partition when the producer does not.
    pub key: Option<Bytes>,
    /// Optional value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Ordered headers; duplicates allowed.
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Whether [`Record::timestamp`] is the producer's or the log's.
    pub timestamp_type: TimestampType,
}

impl Record {
    /// A record with the given key and value, stamped now (create time).
    pub fn new(key: Option<Bytes>, value: Option<Bytes>) -> Self {
        Record {
            key,
            value,
            headers: Vec::new(),
            timestamp: now_ms(),
            timestamp_type: TimestampType::CreateTime,
        }
    }

    /// A record with only a value, stamped now.
    pub fn from_value(value: impl Into<Bytes>) -> Self {
        Record::new(None, Some(value.into()))
    }

    /// Sets the timestamp (create time).
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Adds a header at the end.
    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value,
        });
        self
    }

    /// Bytes this record counts for size limits and metrics: key + value + headers.
    pub fn size_bytes(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>()
    }
}

/// A record read back from the log, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Partition the record is in.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// The record itself.
    pub record: Record,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
