//! `cargo bench -p fleetwatch --bench sim`: the simulator's generator on one core and its log
//! target — the same code as `fleetwatch bench sim`, JSON on stdout.

/// The same allocator as the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cpu = std::thread::available_parallelism().map_or(0, |n| n.get() - 1);
    let opts = fleetwatch::bench::sim::SimBenchOptions {
        cars: 1000,
        ticks: 3600,
        dir: Some("/var/tmp".into()),
        pinned: fleetwatch::bench::pin_to_cpu(cpu),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(fleetwatch::bench::sim::run(opts))?;
    fleetwatch::bench::print(&report, fleetwatch::bench::sim::table)
}
