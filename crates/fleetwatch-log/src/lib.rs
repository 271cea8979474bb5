//! # fleetwatch-log — the embedded log
//!
//! The default storage of fleetwatch: a durable, replayable, partitioned log in a directory,
//! needing no other process. It owns segment files, their sparse offset and time indexes,
//! a CRC per batch, recovery at start (only a torn tail at the end of a partition's last
//! segment is cut, and reported as a note; damage anywhere else is moved aside, every intact
//! batch after it kept at its offsets, and the partition reported degraded — see
//! `partition`'s module doc), retention by time and by size, topic metadata on disk, and a
//! small consumer-group coordinator whose committed offsets live in the internal topic
//! `__consumer_offsets`.
//!
//! It implements [`fleetwatch_core::Log`] and must not know anything above it (SQL, ML,
//! protocols) nor the Kafka backend.
//!
//! ## Layout
//!
//! ```text
//! <data_dir>/topics/<topic>/topic.json                 topic config
//! <data_dir>/topics/<topic>/<partition>/<base>.log      batches (see `batch`)
//! <data_dir>/topics/<topic>/<partition>/<base>.index    sealed segment's indexes
//! <data_dir>/topics/<topic>/<partition>/<base>-<pos>.corrupt
//!                                                       copy of damaged bytes of segment
//!                                                       <base> from byte <pos> (its length
//!                                                       is the range's); kept until an
//!                                                       operator removes it
//! <data_dir>/clean-shutdown                             present only after a clean close
//! ```
//!
//! ## Locks and blocking work
//!
//! A partition's mutex guards its in-memory state; under it run only the positional
//! `pwrite` of an append (page cache) and, at a segment roll, the creation of the next file
//! and the fsync of the directory (metadata only). The fdatasync of the full segment runs
//! before, outside the mutex, on the blocking pool, so readers and appenders of the partition
//! are not stalled behind it. Topic creation and deletion, clean close, fsyncs, retention and
//! the quarantine of damage found on read run on the blocking pool; reads `pread` from the
//! page cache on the calling thread.
//!
//! ## Durability: what an acknowledgement means
//!
//! | `fsync`    | an append returns when…                                   | lost on an OS crash / power cut |
//! |------------|-----------------------------------------------------------|--------------------------------|
//! | `always`   | its bytes are fdatasync'd (one sync shared by concurrent appenders: group commit) | nothing acknowledged |
//! | `interval` | write(2) returned; a sync runs every `fsync_interval_ms` (default 50) | at most the last interval |
//! | `never`    | write(2) returned; the OS flushes when it likes         | whatever the OS had not flushed |
//!
//! Under every policy a crash of the process alone loses nothing acknowledged (the bytes are
//! in the page cache). Under `always`, readers see a record only once it is synced.

mod batch;
mod coordinator;
mod embedded;
#[doc(hidden)]
pub mod fuzzing;
pub mod io;
mod partition;
mod segment;

pub use batch::{BatchError, BatchHeader, decode_header, decode_records, encode, encoded_len};
pub use embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
pub use partition::{RecoveryCut, RecoveryStats};
