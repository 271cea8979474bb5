use fleetwatch_core::conformance::{Fixture, Gaps};
use fleetwatch_log::EmbeddedConfig;
use std::sync::Arc;
use std::time::Duration;

async fn embedded() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedConfig::at(dir.path()).build().unwrap();
    // The directory lives as long as the test process; tests are short.
    std::mem::forget(dir);
    Fixture {
        log: Arc::new(log),
        prefix: "emb".into(),
        session_timeout: Duration::from_millis(800),
        settle: Duration::from_secs(10),
        gaps: Gaps::default(),
    }
}

fleetwatch_core::log_conformance_tests!(embedded);
