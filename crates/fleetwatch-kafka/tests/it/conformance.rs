use fleetwatch_testkit::conformance::{Gaps, HeldFixture};

async fn kafka() -> HeldFixture {
    fleetwatch_testkit::conformance::kafka(Gaps {
        commit_metadata: Some(
            "tansu 0.6 answers OffsetFetch without the metadata committed (seen with confluent-kafka too)",
        ),
        ..Gaps::default()
    })
}

fleetwatch_testkit::log_conformance_tests!(kafka);
