//! `cargo bench -p fleetwatch --bench ml`: training and operator-only scoring of the native
//! models on one core — the same code as `fleetwatch bench ml`, JSON on stdout. The Keras
//! comparison runs when `FLEETWATCH_KERAS_PYTHON` names a Python with tensorflow.

/// The same allocator as the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cpu = std::thread::available_parallelism().map_or(0, |n| n.get() - 1);
    let pinned = fleetwatch::bench::pin_to_cpu(cpu);
    let opts = fleetwatch::bench::ml::MlBenchOptions {
        rows: 1_000_000,
        epochs: 10,
        keras_python: std::env::var_os("FLEETWATCH_KERAS_PYTHON").map(Into::into),
        cpu: pinned.then_some(cpu),
        dir: "/var/tmp".into(),
    };
    let report = fleetwatch::bench::ml::run(&opts)?;
    fleetwatch::bench::print(&report, fleetwatch::bench::ml::table)
}
