//! `cargo bench -p fleetwatch --bench log`: the embedded log benchmark (the same code as
//! `fleetwatch bench log`), JSON on stdout. `FLEETWATCH_BENCH_RECORDS` sets the size.

/// mimalloc: the log's read path hands out slices of large, short-lived buffers; glibc's
/// malloc returns those to the OS and page-faults them back on every read (replay ran 4×
/// slower with it, measured by `fleetwatch bench log`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let records = std::env::var("FLEETWATCH_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let last_cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let pinned = fleetwatch::bench::pin_to_cpu(last_cpu);
    let opts = fleetwatch::bench::log::LogBenchOptions {
        records,
        record_bytes: 200,
        batch: 1000,
        dir: "/var/tmp".into(),
        tmpfs_dir: "/dev/shm".into(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(fleetwatch::bench::log::run(opts, pinned))?;
    fleetwatch::bench::print(&report, fleetwatch::bench::log::table)
}
