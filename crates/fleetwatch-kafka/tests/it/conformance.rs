use crate::broker::bootstrap;
use fleetwatch_core::conformance::{Fixture, Gaps};
use fleetwatch_kafka::KafkaConfig;
use std::sync::Arc;
use std::time::Duration;

async fn kafka() -> Fixture {
    let log = KafkaConfig::at(bootstrap()).build().unwrap();
    Fixture {
        log: Arc::new(log),
        prefix: format!("kfk{}", std::process::id()),
        // tansu completes a join after about half the session timeout
        session_timeout: Duration::from_millis(6000),
        settle: Duration::from_secs(60),
        gaps: Gaps {
            commit_metadata: Some(
                "tansu 0.6 answers OffsetFetch without the metadata committed (seen with confluent-kafka too)",
            ),
            ..Gaps::default()
        },
    }
}

fleetwatch_core::log_conformance_tests!(kafka);
