//! `fleetwatch sim`: a simulated fleet (telemetry, payments, labelled anomalies) sent to a
//! file, the log, an MQTT broker or HTTP ingest; a JSON summary on stdout at the end.

use crate::cmd::Global;
use anyhow::{Context, bail};
use clap::Args;
use fleetwatch::sim::{LogTopics, MqttOptions, SimRun, Target};
use fleetwatch_sim::{AnomalyType, Schema, SimConfig};
use std::path::PathBuf;

#[derive(Args, Debug)]
/// Arguments.
pub struct SimArgs {
    /// Seed of every random choice: the same seed (and flags) gives the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Cars in the fleet.
    #[arg(long, default_value_t = 1000)]
    pub cars: u32,
    /// Simulated milliseconds between two telemetry events of a car.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u32,
    /// Simulated start, epoch milliseconds or `now` (default: now for network targets and
    /// the log, 2026-01-01T00:00:00Z for `--out`, so data sets are reproducible).
    #[arg(long)]
    pub start: Option<String>,
    /// Simulated time to run, e.g. `90s`, `10m`, `2h` (a plain number is seconds).
    #[arg(long)]
    pub duration: Option<String>,
    /// Stop after the tick that reaches this many events.
    #[arg(long)]
    pub events: Option<u64>,
    /// Events per wall-clock second; 0: as fast as the target takes them. Default: real
    /// time (cars × 1000 / interval-ms) for network targets, as fast as possible for `--out`
    /// and `log`.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Write a JSON-lines data set here instead of sending:
    /// `{"stream":"telemetry"|"payments"|"labels","key":…,"value":{…}}` per line.
    #[arg(long, conflicts_with = "target")]
    pub out: Option<PathBuf>,
    /// `mqtt://host:port` (default: the local proxy, mqtt://127.0.0.1:1883), `mqtts://…`,
    /// `http://host:port` (HTTP ingest) or `log` (appended straight to the configured log).
    #[arg(long)]
    pub target: Option<String>,
    /// The telemetry record: `fleetwatch` (rich, with payments) or `cardata-v1` (the
    /// reference demo's record, no payments).
    #[arg(long, default_value = "fleetwatch")]
    pub schema: String,
    /// Fraction of telemetry events inside sensor-fault episodes.
    #[arg(long)]
    pub sensor_anomaly_rate: Option<f64>,
    /// Fraction of payments that are fraudulent.
    #[arg(long)]
    pub fraud_rate: Option<f64>,
    /// How pronounced anomalies are (0.25 subtle … 2.0 blatant).
    #[arg(long)]
    pub anomaly_magnitude: Option<f64>,
    /// Anomaly types to inject, comma-separated (default all): overheating, tyre_leak,
    /// stuck_sensor, spike, battery_failure, geo_velocity, small_payment_burst,
    /// unusual_amount, unusual_merchant, unusual_hour, card_testing.
    #[arg(long, value_delimiter = ',')]
    pub anomalies: Vec<String>,
    /// Mean background payments per car per simulated hour.
    #[arg(long)]
    pub payments_per_hour: Option<f64>,
    /// Share of electric cars (0–1).
    #[arg(long)]
    pub ev_share: Option<f64>,
    /// MQTT connections (cars are spread over them; one car always uses the same one).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// MQTT QoS (0 or 1).
    #[arg(long, default_value_t = 1)]
    pub qos: u8,
    /// MQTT QoS 1 publishes unacknowledged per connection.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// MQTT username.
    #[arg(long)]
    pub username: Option<String>,
    /// MQTT password (or FLEETWATCH_SIM_PASSWORD).
    #[arg(long, env = "FLEETWATCH_SIM_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// CA file for `mqtts://` (default: the system's).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// `log` target: the telemetry topic.
    #[arg(long, default_value = "telemetry.raw")]
    pub telemetry_topic: String,
    /// `log` target: the payments topic.
    #[arg(long, default_value = "payments.raw")]
    pub payments_topic: String,
    /// `log` target: the labels topic.
    #[arg(long, default_value = "labels")]
    pub labels_topic: String,
    /// `log` target: partitions of topics it creates.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
}

fn parse_duration(s: &str) -> anyhow::Result<f64> {
    let (num, mult) = match s.trim().strip_suffix('h') {
        Some(n) => (n, 3600.0),
        None => match s.trim().strip_suffix('m') {
            Some(n) => (n, 60.0),
            None => (s.trim().strip_suffix('s').unwrap_or(s.trim()), 1.0),
        },
    };
    let v: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .with_context(|| format!("--duration {s:?}: expected e.g. 90s, 10m or 2h"))?;
    Ok(v * mult)
}

/// Runs it.
pub fn run(g: &Global, a: SimArgs) -> anyhow::Result<()> {
    let target = match (&a.out, a.target.as_deref()) {
        (Some(p), _) => Target::File(p.clone()),
        (None, Some("log")) => Target::Log,
        (None, t) => {
            let url = t.unwrap_or("mqtt://127.0.0.1:1883");
            if url.starts_with("http://") || url.starts_with("https://") {
                Target::Http(url.to_string(), 16)
            } else if url.starts_with("mqtt://") || url.starts_with("mqtts://") {
                anyhow::ensure!(a.qos <= 1, "--qos {}: use 0 or 1", a.qos);
                anyhow::ensure!(a.connections >= 1, "--connections must be at least 1");
                Target::Mqtt(MqttOptions {
                    url: url.to_string(),
                    connections: a.connections,
                    qos: a.qos,
                    window: a.window.max(1),
                    client_prefix: format!("fleetwatch-sim-{}", a.seed),
                    username: a.username.clone(),
                    password: a.password.clone(),
                    ca_file: a.ca_file.clone(),
                })
            } else {
                bail!(
                    "--target {url:?}: use mqtt://host:port, mqtts://host:port, http://host:port or log"
                );
            }
        }
    };
    let dataset = matches!(target, Target::File(_) | Target::Log);
    if matches!(target, Target::File(_)) {
        anyhow::ensure!(
            a.duration.is_some() || a.events.is_some(),
            "--out needs a bound: --duration (e.g. 10m) or --events N"
        );
    }
    let mut config = SimConfig {
        seed: a.seed,
        cars: a.cars,
        interval_ms: a.interval_ms,
        schema: a
            .schema
            .parse::<Schema>()
            .map_err(|e| anyhow::anyhow!("--schema {:?}: {e}", a.schema))?,
        ..SimConfig::default()
    };
    match a.start.as_deref() {
        Some("now") => config.start_ms = fleetwatch_core::now_ms(),
        Some(ms) => {
            config.start_ms = ms
                .parse()
                .with_context(|| format!("--start {ms:?}: expected epoch milliseconds or now"))?
        }
        None if !matches!(target, Target::File(_)) => config.start_ms = fleetwatch_core::now_ms(),
        None => {}
    }
    if let Some(v) = a.sensor_anomaly_rate {
        config.sensor_anomaly_rate = v;
    }
    if let Some(v) = a.fraud_rate {
        config.fraud_rate = v;
    }
    if let Some(v) = a.anomaly_magnitude {
        config.anomaly_magnitude = v;
    }
    if let Some(v) = a.payments_per_hour {
        config.payments_per_hour = v;
    }
    if let Some(v) = a.ev_share {
        config.ev_share = v;
    }
    if !a.anomalies.is_empty() {
        config.anomalies = a
            .anomalies
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<AnomalyType>()
                    .map_err(|e| anyhow::anyhow!("--anomalies {s:?}: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let max_ticks = match &a.duration {
        Some(d) => {
            Some(((parse_duration(d)? * 1000.0) / f64::from(a.interval_ms.max(1))).ceil() as u64)
        }
        None => None,
    };
    let realtime = f64::from(a.cars) * 1000.0 / f64::from(a.interval_ms.max(1));
    let rate = match a.rate {
        Some(r) if r < 0.0 || !r.is_finite() => {
            bail!("--rate {r}: use 0 (as fast as possible) or more")
        }
        Some(0.0) => None,
        Some(r) => Some(r),
        None if dataset => None,
        None => Some(realtime),
    };
    let sim_run = SimRun {
        config,
        target,
        rate,
        max_events: a.events,
        max_ticks,
        topics: LogTopics {
            telemetry: a.telemetry_topic,
            payments: a.payments_topic,
            labels: a.labels_topic,
            partitions: a.partitions,
        },
    };
    let print = |s: fleetwatch::sim::SimSummary| -> anyhow::Result<()> {
        use std::io::Write;
        let text = serde_json::to_string_pretty(&s)?;
        // A closed pipe (`| head`) is not an error of the simulation.
        let _ = writeln!(std::io::stdout(), "{text}");
        Ok(())
    };
    if matches!(sim_run.target, Target::Log) {
        let config = g.config()?;
        anyhow::ensure!(
            g.remote(&config).is_none(),
            "--target log: a running server owns the data directory; send to it with --target mqtt://… or http://… instead"
        );
        return crate::cmd::with_log(&config, |log| async move {
            print(fleetwatch::sim::run(sim_run, Some(log)).await?)
        });
    }
    let summary = crate::cmd::runtime(true)?.block_on(fleetwatch::sim::run(sim_run, None))?;
    print(summary)
}
