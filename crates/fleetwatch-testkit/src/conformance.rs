//! The `Log` conformance suite's fixtures.
//!
//! A backend's integration tests write one maker and one macro line:
//!
//! ```ignore
//! use fleetwatch_testkit::conformance::{Gaps, HeldFixture};
//!
//! async fn embedded() -> HeldFixture {
//!     fleetwatch_testkit::conformance::embedded(Gaps::default())
//! }
//!
//! fleetwatch_testkit::log_conformance_tests!(embedded);
//! ```
//!
//! [`HeldFixture`] derefs to the core [`Fixture`] and owns what the log lives on (the embedded
//! log's temporary directory) until the test ends; the log is dropped before its directory.

use std::ops::Deref;

pub use fleetwatch_core::conformance::{Fixture, Gaps};

/// A [`Fixture`] with the guard of what its log lives on; derefs to the fixture, so makers
/// returning it work with [`log_conformance_tests!`](crate::log_conformance_tests).
pub struct HeldFixture {
    // Declared first: dropped before the guard, so the log closes before its files go.
    fixture: Fixture,
    _guard: Option<tempfile::TempDir>,
}

impl HeldFixture {
    /// A fixture holding `guard` (if any) for its lifetime.
    pub fn new(fixture: Fixture, guard: Option<tempfile::TempDir>) -> HeldFixture {
        HeldFixture {
            fixture,
            _guard: guard,
        }
    }
}

impl Deref for HeldFixture {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.fixture
    }
}

/// The embedded log on a fresh temporary directory owned by the fixture; short group timing.
#[cfg(feature = "embedded")]
pub fn embedded(gaps: Gaps) -> HeldFixture {
    use std::sync::Arc;
    use std::time::Duration;
    let dir = crate::temp_dir();
    let log = fleetwatch_log::EmbeddedConfig::at(dir.path())
        .build()
        .expect("opening the embedded log on a fresh directory");
    HeldFixture::new(
        Fixture {
            log: Arc::new(log),
            prefix: "emb".into(),
            session_timeout: Duration::from_millis(800),
            settle: Duration::from_secs(10),
            gaps,
        },
        Some(dir),
    )
}

/// The Kafka backend on the process's tansu broker ([`crate::tansu::bootstrap`]), with the
/// timing tansu needs (it completes a join after about half the session timeout).
#[cfg(feature = "kafka")]
pub fn kafka(gaps: Gaps) -> HeldFixture {
    use std::sync::Arc;
    use std::time::Duration;
    let log = fleetwatch_kafka::KafkaConfig::at(crate::tansu::bootstrap())
        .build()
        .expect("building the Kafka backend");
    HeldFixture::new(
        Fixture {
            log: Arc::new(log),
            prefix: format!("kfk{}", std::process::id()),
            session_timeout: Duration::from_millis(6000),
            settle: Duration::from_secs(60),
            gaps,
        },
        None,
    )
}
