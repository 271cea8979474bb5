//! `fleetwatch bench sim`: the simulator's generator alone, on one pinned core (the target is
//! ≥ 1,000,000 events/s), for the fleetwatch record and `cardata-v1`; then the `log` target
//! (generator + appends into a fresh embedded log) to show what replay data costs to make.

use crate::bench::{Rates, Timer, fresh_dir};
use fleetwatch_sim::{Batch, Schema, SimConfig, Simulator};
use serde::Serialize;
use std::path::PathBuf;

/// Options.
#[derive(Debug, Clone)]
pub struct SimBenchOptions {
    /// Cars.
    pub cars: u32,
    /// Ticks per generator phase (after a warm-up of a tenth as many).
    pub ticks: u64,
    /// Where the log phase's data directory goes (`None`: skip it).
    pub dir: Option<PathBuf>,
    /// Whether the thread was pinned to one CPU.
    pub pinned: bool,
}

/// One phase.
#[derive(Debug, Clone, Serialize)]
pub struct SimPhase {
    /// Its name.
    pub name: String,
    /// Events made (all streams).
    pub events: u64,
    /// JSON bytes made.
    pub bytes: u64,
    /// Mean event size, bytes.
    pub mean_event_bytes: f64,
    /// Rates (records = events).
    pub rates: Rates,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct SimBenchReport {
    /// Cars simulated.
    pub cars: u32,
    /// Pinned to one CPU.
    pub pinned: bool,
    /// Phases.
    pub phases: Vec<SimPhase>,
    /// Whether the generator alone made ≥ 1,000,000 events/s for the fleetwatch record.
    pub generator_target_met: bool,
}

fn generate(schema: Schema, o: &SimBenchOptions, name: &str) -> anyhow::Result<SimPhase> {
    let mut sim = Simulator::new(SimConfig {
        cars: o.cars,
        schema,
        ..SimConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut batch = Batch::new();
    for _ in 0..(o.ticks / 10).max(1) {
        batch.clear();
        sim.tick(&mut batch);
    }
    let (mut events, mut bytes) = (0u64, 0u64);
    let t = Timer::start();
    for _ in 0..o.ticks {
        batch.clear();
        sim.tick(&mut batch);
        events += batch.len() as u64;
        bytes += batch.bytes() as u64;
    }
    let p = t.stop();
    Ok(SimPhase {
        name: name.into(),
        events,
        bytes,
        mean_event_bytes: crate::bench::round(bytes as f64 / events.max(1) as f64),
        rates: Rates::of(&p, events as usize, bytes),
    })
}

/// Runs the phases.
pub async fn run(o: SimBenchOptions) -> anyhow::Result<SimBenchReport> {
    let mut phases = vec![
        generate(Schema::Fleetwatch, &o, "generator_fleetwatch")?,
        generate(Schema::CardataV1, &o, "generator_cardata_v1")?,
    ];
    if let Some(base) = &o.dir {
        let dir = fresh_dir(base, "sim")?;
        let log: std::sync::Arc<dyn fleetwatch_core::Log> =
            std::sync::Arc::new(fleetwatch_log::EmbeddedConfig::at(&dir).build()?);
        let run = crate::sim::SimRun {
            config: SimConfig {
                cars: o.cars,
                start_ms: fleetwatch_core::now_ms(),
                ..SimConfig::default()
            },
            target: crate::sim::Target::Log,
            rate: None,
            max_events: None,
            max_ticks: Some(o.ticks),
            topics: crate::sim::LogTopics::default(),
        };
        let t = Timer::start();
        let summary = crate::sim::run(run, Some(log.clone())).await;
        let p = t.stop();
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
        let s = summary?;
        phases.push(SimPhase {
            name: "log_target".into(),
            events: s.total_events,
            bytes: 0,
            mean_event_bytes: 0.0,
            rates: Rates::of(&p, s.total_events as usize, 0),
        });
    }
    let generator_target_met = phases[0].rates.records_per_sec >= 1_000_000.0;
    Ok(SimBenchReport {
        cars: o.cars,
        pinned: o.pinned,
        phases,
        generator_target_met,
    })
}

/// The table.
pub fn table(r: &SimBenchReport) -> String {
    let mut s = String::new();
    for p in &r.phases {
        s.push_str(&format!(
            "{:<22} {:>12} ev/s {:>9} MiB/s {:>8} cpu-s/M\n",
            p.name, p.rates.records_per_sec, p.rates.mib_per_sec, p.rates.cpu_seconds_per_million
        ));
    }
    s.push_str(&format!(
        "generator ≥ 1,000,000 events/s on one core: {}\n",
        r.generator_target_met
    ));
    s
}
