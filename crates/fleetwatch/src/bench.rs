//! `fleetwatch bench log`: the embedded log's throughput, as JSON on stdout and a short
//! table on stderr. Measured on one core (the process pins itself), with CPU seconds per
//! million records beside each rate, because these machines are shared and noisy.
//!
//! - `raw_write`: the same number of bytes written sequentially to a plain file on the
//!   same disk, in the same chunk sizes, ending in fdatasync — the disk's own speed;
//! - `append_disk`: `Log::append` under the `interval` policy on that disk, ending in a
//!   flush; `ratio_to_raw` = its bytes/s ÷ raw_write's (target ≥ 0.5);
//! - `append_tmpfs`: the same on tmpfs (`/dev/shm`): the log's CPU cost (target ≥ 2 M/s);
//! - `replay`: reading everything back from the start (target ≥ 5 M/s);
//! - `memory`: resident set size before and after, to show it stays flat as the log grows.

#![allow(unsafe_code)]

use bytes::Bytes;
use fleetwatch_core::{LogAdmin, LogData, OffsetSpec, ReadLimits, Record, TopicConfig};
use fleetwatch_log::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Options of `bench log`.
#[derive(Debug, Clone)]
pub struct LogBenchOptions {
    /// Records per phase.
    pub records: usize,
    /// Value bytes per record.
    pub record_bytes: usize,
    /// Records per append.
    pub batch: usize,
    /// Directory on the disk to measure.
    pub dir: PathBuf,
    /// Directory on tmpfs (skipped when it does not exist).
    pub tmpfs_dir: PathBuf,
}

/// Pins the calling thread (and threads it starts later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it;
    // sched_setaffinity reads it for the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// (VmRSS, VmHWM) in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Phase {
    seconds: f64,
    cpu: f64,
}

fn rates(p: &Phase, records: usize, bytes: u64) -> Value {
    json!({
        "seconds": round(p.seconds),
        "records_per_sec": round(records as f64 / p.seconds),
        "mib_per_sec": round(bytes as f64 / p.seconds / 1048576.0),
        "cpu_seconds": round(p.cpu),
        "cpu_seconds_per_million": round(p.cpu / (records as f64 / 1e6)),
    })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn records(o: &LogBenchOptions) -> Vec<Record> {
    let payload = Bytes::from(vec![b'x'; o.record_bytes]);
    (0..o.batch)
        .map(|_| Record::new(None, Some(payload.clone())))
        .collect()
}

fn fresh_dir(base: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let d = base.join(format!("fleetwatch-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Appends `o.records` records; returns the phase timing and bytes written to disk.
async fn append_phase(log: &EmbeddedLog, o: &LogBenchOptions) -> anyhow::Result<(Phase, u64)> {
    log.create_topic(
        "bench",
        TopicConfig {
            retention_ms: None,
            segment_bytes: 256 << 20,
            ..TopicConfig::with_partitions(1)
        },
    )
    .await?;
    let batch = records(o);
    let cancel = CancellationToken::new();
    let maint = {
        let log = log.clone();
        let c = cancel.clone();
        tokio::spawn(async move { log.run_maintenance(c).await })
    };
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut done = 0;
    while done < o.records {
        let n = o.batch.min(o.records - done);
        log.append("bench", 0, &batch[..n]).await?;
        done += n;
        tokio::task::yield_now().await;
    }
    log.flush().await?;
    let phase = Phase {
        seconds: t0.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c0,
    };
    cancel.cancel();
    let _ = maint.await;
    let bytes = log
        .sizes()
        .iter()
        .filter(|(tp, _, _)| tp.topic == "bench")
        .map(|x| x.1)
        .sum();
    Ok((phase, bytes))
}

/// Writes `bytes` bytes in `chunk`-sized writes and fdatasyncs.
fn raw_write(dir: &Path, bytes: u64, chunk: usize) -> anyhow::Result<Phase> {
    let path = dir.join("raw.bin");
    let buf = vec![b'x'; chunk.max(1)];
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut f = std::fs::File::create(&path)?;
    let mut left = bytes;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_data()?;
    let phase = Phase {
        seconds: t0.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c0,
    };
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(phase)
}

/// `always` policy: `writers` tasks each appending one record at a time; group commit lets
/// concurrent appenders share an fdatasync. Returns (phase, records).
async fn always_phase(
    dir: &Path,
    o: &LogBenchOptions,
    writers: usize,
) -> anyhow::Result<(Phase, usize)> {
    let d = fresh_dir(dir, "always")?;
    let log = EmbeddedConfig {
        fsync: FsyncPolicy::Always,
        ..EmbeddedConfig::at(&d)
    }
    .build()?;
    log.create_topic("bench", TopicConfig::with_partitions(1))
        .await?;
    let per_writer = (o.records / 100).clamp(100, 2_000) / writers.max(1) + 1;
    let payload = Bytes::from(vec![b'x'; o.record_bytes]);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let log = log.clone();
        let rec = Record::new(None, Some(payload.clone()));
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_writer {
                log.append("bench", 0, std::slice::from_ref(&rec)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let phase = Phase {
        seconds: t0.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c0,
    };
    drop(log);
    let _ = std::fs::remove_dir_all(&d);
    Ok((phase, per_writer * writers))
}

/// Runs the benchmark; returns the JSON report.
pub async fn run_log(o: LogBenchOptions, pinned: bool) -> anyhow::Result<Value> {
    let (rss0, _) = rss_kib();
    let disk = fresh_dir(&o.dir, "disk")?;
    let cfg = |d: &Path| EmbeddedConfig {
        fsync: FsyncPolicy::Interval,
        ..EmbeddedConfig::at(d)
    };
    let log = cfg(&disk).build()?;
    let (append_disk, disk_bytes) = append_phase(&log, &o).await?;
    drop(log);
    let (rss_after_disk, _) = rss_kib();
    let _ = std::fs::remove_dir_all(&disk);
    let chunk = (disk_bytes / (o.records as u64 / o.batch as u64).max(1)) as usize;
    let raw = raw_write(&o.dir, disk_bytes, chunk)?;
    let raw_bps = disk_bytes as f64 / raw.seconds;
    let writers = 16;
    let (always, always_records) = always_phase(&o.dir, &o, writers).await?;
    let disk_bps = disk_bytes as f64 / append_disk.seconds;
    let mut report = json!({
        "bench": "log",
        "records": o.records,
        "record_bytes": o.record_bytes,
        "batch": o.batch,
        "pinned_to_one_cpu": pinned,
        "fsync": "interval",
        "disk_dir": o.dir.display().to_string(),
        "raw_write": rates(&raw, o.records, disk_bytes),
        "append_disk": rates(&append_disk, o.records, disk_bytes),
        "ratio_to_raw": round(disk_bps / raw_bps),
        "append_disk_always_single_records": {
            "writers": writers,
            "records": always_records,
            "records_per_sec": round(always_records as f64 / always.seconds),
            "mean_ack_latency_ms": round(always.seconds * 1000.0 / (always_records as f64 / writers as f64)),
            "cpu_seconds_per_million": round(always.cpu / (always_records as f64 / 1e6)),
        },
    });
    if o.tmpfs_dir.is_dir() {
        let tmp = fresh_dir(&o.tmpfs_dir, "tmpfs")?;
        let log = cfg(&tmp).build()?;
        let (append_tmpfs, bytes) = append_phase(&log, &o).await?;
        let (rss_after_tmpfs, _) = rss_kib();
        // replay
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let mut next = log.offset_for("bench", 0, OffsetSpec::Earliest).await?;
        let mut count = 0usize;
        let limits = ReadLimits {
            max_records: 100_000,
            max_bytes: 8 << 20,
            ..Default::default()
        };
        loop {
            let b = log.read("bench", 0, next, limits).await?;
            if b.records.is_empty() {
                break;
            }
            count += b.records.len();
            next = b.next_offset(next);
        }
        let replay = Phase {
            seconds: t0.elapsed().as_secs_f64(),
            cpu: cpu_seconds() - c0,
        };
        anyhow::ensure!(
            count == o.records,
            "replay read {count} of {} records",
            o.records
        );
        drop(log);
        let _ = std::fs::remove_dir_all(&tmp);
        report["append_tmpfs"] = rates(&append_tmpfs, o.records, bytes);
        report["replay"] = rates(&replay, o.records, bytes);
        report["memory"] = json!({
            "rss_start_kib": rss0,
            "rss_after_disk_phase_kib": rss_after_disk,
            "rss_after_tmpfs_phase_kib": rss_after_tmpfs,
            "rss_peak_kib": rss_kib().1,
            "log_bytes_per_phase": bytes,
        });
    } else {
        report["append_tmpfs"] = json!(null);
        report["replay"] = json!(null);
        report["memory"] = json!({"rss_start_kib": rss0, "rss_after_disk_phase_kib": rss_after_disk, "rss_peak_kib": rss_kib().1});
    }
    report["targets"] = json!({
        "ratio_to_raw": ">= 0.5",
        "append_tmpfs_records_per_sec": ">= 2000000",
        "replay_records_per_sec": ">= 5000000",
    });
    Ok(report)
}

/// The short table printed to stderr.
pub fn table(r: &Value) -> String {
    let row = |name: &str, v: &Value| {
        format!(
            "{name:<14} {:>14} rec/s {:>10} MiB/s {:>8} cpu-s/M\n",
            v["records_per_sec"], v["mib_per_sec"], v["cpu_seconds_per_million"]
        )
    };
    let mut s = String::new();
    for k in ["raw_write", "append_disk", "append_tmpfs", "replay"] {
        if !r[k].is_null() {
            s.push_str(&row(k, &r[k]));
        }
    }
    s.push_str(&format!(
        "ratio append_disk / raw_write: {}\n",
        r["ratio_to_raw"]
    ));
    let a = &r["append_disk_always_single_records"];
    s.push_str(&format!(
        "fsync=always, {} writers, one record per append: {} rec/s, {} ms per ack\n",
        a["writers"], a["records_per_sec"], a["mean_ack_latency_ms"]
    ));
    s
}

/// The car sensor record of the reference demo (`schemas/cardata-v1.avsc`).
pub const CARDATA_V1: &str = include_str!("../../../schemas/cardata-v1.avsc");

fn cardata_value(i: usize) -> apache_avro::types::Value {
    use apache_avro::types::Value as V;
    let f = |base: f32| V::Float(base + (i % 97) as f32 * 0.25);
    let mut fields = vec![
        ("time".to_string(), V::Long(1_700_000_000 + i as i64)),
        ("car".to_string(), V::String(format!("car-{}", i % 1000))),
    ];
    for name in [
        "coolant_temp",
        "intake_air_temp",
        "intake_air_flow_speed",
        "battery_percentage",
        "battery_voltage",
        "current_draw",
        "speed",
        "engine_vibration_amplitude",
        "throttle_pos",
    ] {
        fields.push((name.to_string(), f(10.0)));
    }
    for name in [
        "tire_pressure_1_1",
        "tire_pressure_1_2",
        "tire_pressure_2_1",
        "tire_pressure_2_2",
    ] {
        fields.push((name.to_string(), V::Int(30 + (i % 5) as i32)));
    }
    for name in [
        "accelerometer_1_1_value",
        "accelerometer_1_2_value",
        "accelerometer_2_1_value",
        "accelerometer_2_2_value",
    ] {
        fields.push((name.to_string(), f(0.5)));
    }
    fields.push(("control_unit_firmware".to_string(), V::Int(2000)));
    V::Record(fields)
}

/// Options of `bench schema`.
#[derive(Debug, Clone)]
pub struct SchemaBenchOptions {
    /// Records to encode and decode.
    pub records: usize,
    /// How long to run the HTTP lookup load.
    pub http_seconds: f64,
    /// Concurrent HTTP clients.
    pub http_clients: usize,
}

/// Avro encode/decode of the cardata-v1 record on this thread, then `GET /schemas/ids/{id}`
/// over HTTP against an in-process registry (server and clients share the machine).
pub async fn run_schema(o: SchemaBenchOptions) -> anyhow::Result<Value> {
    use fleetwatch_schema::avro;
    use fleetwatch_schema::codec::AvroCodec;
    let parsed = avro::parse(CARDATA_V1, &[])?;
    let codec = AvroCodec::new(&parsed)?;
    let values: Vec<apache_avro::types::Value> = (0..1000).map(cardata_value).collect();
    let mut buf = Vec::with_capacity(256);
    let mut datums: Vec<Vec<u8>> = Vec::with_capacity(values.len());
    for v in &values {
        buf.clear();
        codec.encode(v, &mut buf)?;
        datums.push(buf.clone());
    }
    let datum_bytes = datums[0].len();
    let encode_with = |trusted: bool, buf: &mut Vec<u8>| -> anyhow::Result<Phase> {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        for i in 0..o.records {
            buf.clear();
            let v = &values[i % values.len()];
            if trusted {
                codec.encode_trusted(v, buf)?;
            } else {
                codec.encode(v, buf)?;
            }
        }
        Ok(Phase {
            seconds: t0.elapsed().as_secs_f64(),
            cpu: cpu_seconds() - c0,
        })
    };
    let encode = encode_with(true, &mut buf)?;
    let encode_checked = encode_with(false, &mut buf)?;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for i in 0..o.records {
        let v = codec.decode(&datums[i % datums.len()])?;
        std::hint::black_box(v);
    }
    let decode = Phase {
        seconds: t0.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c0,
    };

    // HTTP: a registry over an embedded log in a temporary directory.
    let dir = tempfile::tempdir()?;
    let log: std::sync::Arc<dyn fleetwatch_core::Log> =
        std::sync::Arc::new(EmbeddedConfig::at(dir.path()).build()?);
    let registry = fleetwatch_schema::SchemaRegistryConfig::default()
        .build(log)
        .await?;
    let req = fleetwatch_schema::types::RegisterRequest {
        schema: CARDATA_V1.to_string(),
        ..Default::default()
    };
    let id = registry.register("cardata-value", &req, false).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let server = {
        let c = cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, fleetwatch_schema::http::router(registry))
                .with_graceful_shutdown(async move { c.cancelled().await })
                .await
        })
    };
    let client = reqwest::Client::new();
    // Registrations, one after another: each is appended to `_schemas` and applied before
    // it is answered, so this is the write path's latency.
    let registrations = if o.http_seconds >= 1.0 { 200 } else { 20 };
    let t0 = Instant::now();
    for i in 0..registrations {
        let schema =
            format!(r#"{{"type":"record","name":"R{i}","fields":[{{"name":"a","type":"int"}}]}}"#);
        let r = client
            .post(format!("http://{addr}/subjects/bench-{i}/versions"))
            .json(&json!({ "schema": schema }))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "registration failed: {}",
            r.status()
        );
    }
    let register_seconds = t0.elapsed().as_secs_f64();
    let url = format!("http://{addr}/schemas/ids/{id}");
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(o.http_seconds);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut tasks = Vec::new();
    for _ in 0..o.http_clients.max(1) {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let r = client.get(&url).send().await?;
                anyhow::ensure!(r.status().is_success(), "lookup failed: {}", r.status());
                r.bytes().await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut lookups = 0u64;
    for t in tasks {
        lookups += t.await??;
    }
    let http = Phase {
        seconds: t0.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c0,
    };
    cancel.cancel();
    let _ = server.await;
    Ok(json!({
        "bench": "schema",
        "record": "cardata-v1 (schemas/cardata-v1.avsc)",
        "datum_bytes": datum_bytes,
        "records": o.records,
        "avro_encode": rates(&encode, o.records, (o.records * datum_bytes) as u64),
        "avro_encode_checked": rates(&encode_checked, o.records, (o.records * datum_bytes) as u64),
        "avro_decode": rates(&decode, o.records, (o.records * datum_bytes) as u64),
        "http_register": {
            "registrations": registrations,
            "registrations_per_sec": round(f64::from(registrations) / register_seconds),
            "mean_latency_ms": round(register_seconds * 1000.0 / f64::from(registrations)),
        },
        "http_lookup": {
            "clients": o.http_clients,
            "requests": lookups,
            "seconds": round(http.seconds),
            "requests_per_sec": round(lookups as f64 / http.seconds),
            "cpu_seconds": round(http.cpu),
        },
        "targets": {
            "avro_encode_records_per_sec_per_core": ">= 1000000",
            "avro_decode_records_per_sec_per_core": ">= 1000000",
            "http_lookup_requests_per_sec": ">= 50000 (2 cores)",
        },
    }))
}

/// The short table of `bench schema`.
pub fn schema_table(r: &Value) -> String {
    format!(
        "avro_encode    {:>14} rec/s {:>8} cpu-s/M\navro_encode_checked {:>9} rec/s {:>8} cpu-s/M\navro_decode    {:>14} rec/s {:>8} cpu-s/M\nhttp_register  {:>14} req/s (sequential)\nhttp_lookup    {:>14} req/s ({} clients)\n",
        r["avro_encode"]["records_per_sec"],
        r["avro_encode"]["cpu_seconds_per_million"],
        r["avro_encode_checked"]["records_per_sec"],
        r["avro_encode_checked"]["cpu_seconds_per_million"],
        r["avro_decode"]["records_per_sec"],
        r["avro_decode"]["cpu_seconds_per_million"],
        r["http_register"]["registrations_per_sec"],
        r["http_lookup"]["requests_per_sec"],
        r["http_lookup"]["clients"],
    )
}
