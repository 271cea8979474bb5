use fleetwatch_testkit::conformance::{Gaps, HeldFixture};

/// The embedded log on a temporary directory the fixture owns until the test ends.
async fn embedded() -> HeldFixture {
    fleetwatch_testkit::conformance::embedded(Gaps::default())
}

fleetwatch_testkit::log_conformance_tests!(embedded);
