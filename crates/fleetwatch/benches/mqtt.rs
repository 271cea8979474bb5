//! `cargo bench -p fleetwatch --bench mqtt`: MQTT QoS 1 / QoS 0 publish load against the
//! MQTT proxy (a `fleetwatch serve` child) and the local Mosquitto — the same code as
//! `fleetwatch bench mqtt`, JSON on stdout. `FLEETWATCH_BENCH_SECONDS` sets the phase length
//! (default 10).

/// The same allocator as the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let seconds = std::env::var("FLEETWATCH_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let opts = fleetwatch::bench::mqtt::MqttBenchOptions {
        connections: 64,
        inflight: 256,
        payload: 300,
        seconds,
        server_bin: env!("CARGO_BIN_EXE_fleetwatch").into(),
        dir: "/var/tmp".into(),
        mosquitto: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 1883))),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(fleetwatch::bench::mqtt::run(opts))?;
    fleetwatch::bench::print(&report, fleetwatch::bench::mqtt::table)
}
