//! `cargo bench -p fleetwatch --bench schema`: the schema registry benchmark (the same code
//! as `fleetwatch bench schema`), JSON on stdout.

/// The same allocator as the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let opts = fleetwatch::bench::schema::SchemaBenchOptions {
        records: 2_000_000,
        http_seconds: 5.0,
        http_clients: 32,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(fleetwatch::bench::schema::run(opts))?;
    fleetwatch::bench::print(&report, fleetwatch::bench::schema::table)
}
