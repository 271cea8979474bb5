//! `cargo bench -p fleetwatch --bench produce`: REST Proxy produce requests of 100,000
//! records against an in-process server (the same code as `fleetwatch bench produce`): rate,
//! CPU seconds per million records and peak memory per record, JSON on stdout.
//! `FLEETWATCH_BENCH_REQUESTS` sets the number of large requests (default 10).

/// The same allocator as the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let requests = std::env::var("FLEETWATCH_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let opts = fleetwatch::bench::produce::ProduceBenchOptions {
        requests,
        records_per_request: 100_000,
        partitions: 1,
        dir: "/var/tmp".into(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(fleetwatch::bench::produce::run(opts))?;
    fleetwatch::bench::print(&report, fleetwatch::bench::produce::table)
}
