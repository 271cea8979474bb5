//! `cargo bench -p fleetwatch --bench sql`: the streaming SQL engine on one core — the same
//! code as `fleetwatch bench sql`, JSON on stdout.

/// The same allocator as the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cpu = std::thread::available_parallelism().map_or(0, |n| n.get() - 1);
    let opts = fleetwatch::bench::sql::SqlBenchOptions {
        events: 2_000_000,
        batch_rows: 4096,
        dir: Some("/var/tmp".into()),
        pinned: fleetwatch::bench::pin_to_cpu(cpu),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(fleetwatch::bench::sql::run(opts))?;
    fleetwatch::bench::print(&report, fleetwatch::bench::sql::table)
}
