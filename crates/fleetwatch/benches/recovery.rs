//! `cargo bench -p fleetwatch --bench recovery`: the embedded log's start-up after an
//! unclean and a clean stop (the same code as `fleetwatch bench recovery`), JSON on stdout.
//! `FLEETWATCH_BENCH_SIZES` sets the log sizes (comma-separated, e.g. `1GiB,512MiB`; default
//! `1GiB,10GiB`), `FLEETWATCH_BENCH_DIR` the directory (default `/var/tmp`).

/// The same allocator as the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let sizes_bytes = match std::env::var("FLEETWATCH_BENCH_SIZES") {
        Ok(v) => v
            .split(',')
            .map(fleetwatch::bench::parse_size)
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?,
        Err(_) => vec![1 << 30, 10 << 30],
    };
    let opts = fleetwatch::bench::recovery::RecoveryBenchOptions {
        sizes_bytes,
        dir: std::env::var_os("FLEETWATCH_BENCH_DIR").map_or_else(|| "/var/tmp".into(), Into::into),
        record_bytes: 200,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(fleetwatch::bench::recovery::run(opts))?;
    fleetwatch::bench::print(&report, fleetwatch::bench::recovery::table)
}
