//! `fleetwatch bench produce` ([`run`], [`table`]): the REST Proxy's produce path and the
//! memory one large request costs, as JSON on stdout and a short table on stderr.
//!
//! The REST Proxy API runs in this process on `127.0.0.1:0` over an embedded log in a fresh
//! directory (the router of `serve`: `fleetwatch_rest::router` inside the common HTTP layers
//! of `fleetwatch-server`, with the default `[http]` limits: 16 MiB bodies, 100,000 records
//! per request), and an HTTP client in the same process posts to it:
//!
//! - `produce`: `requests` requests of `records_per_request` small keyed JSON records, one
//!   after another (records/s, MiB of body/s, CPU seconds per million records — the CPU is
//!   the whole process's, so it includes the client sending the bodies and reading the
//!   answers);
//! - `memory`: the peak resident growth of each of those requests: before each, the peak
//!   (`VmHWM`) is reset to the current resident size (`VmRSS`, via `/proc/self/clear_refs`),
//!   and after it the peak is read again; growth = peak after − resident before. Divided by
//!   the records it is bytes per record, and divided by the body a multiple of the body. The
//!   bodies are built beforehand (they are in the "before"), and the benchmark waits a moment
//!   between requests so that the allocator can hand freed memory back; memory it keeps and
//!   reuses is not counted again, so the first request is the one to read;
//! - `oversized`: then one body of 16 MiB of empty records (`{}`, about 5.6 M of them), which
//!   the server must refuse with 413 / 41302 while parsing, and its peak growth, measured
//!   the same way. It runs after the large requests, so pages the allocator kept from them
//!   are reused and its growth is a lower bound; compare its `peak_kib` with theirs: the
//!   refused body must not lift the process above what accepted requests take.
//!
//! Before the produce path parsed bodies as raw JSON (borrowed slices, the record count
//! checked while parsing), the server built a JSON tree of the whole body first: that
//! 16 MiB body of 5.6 M empty records peaked at 1.9 GiB resident — about 120 times the
//! body, some 360 bytes per record — before it was refused.
//!
//! Where `clear_refs` cannot be written the peak cannot be reset: `hwm_reset` is then false
//! and each figure is the peak of the run so far (an upper bound).

use super::{Rates, Timer, human_bytes, reset_peak_rss, round, rss};
use crate::config::Config;
use fleetwatch_core::{Log, OffsetSpec, TopicConfig};
use fleetwatch_log::{EmbeddedConfig, FsyncPolicy};
use fleetwatch_metrics::Metrics;
use fleetwatch_rest::{AppState, RestConfig, RestMetrics};
use fleetwatch_server::http::{HttpMetrics, LayerOptions, layers};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Options of `bench produce`.
#[derive(Debug, Clone)]
pub struct ProduceBenchOptions {
    /// Large requests to time and measure.
    pub requests: usize,
    /// Records per request (at most `http.max_records_per_request`, 100,000).
    pub records_per_request: usize,
    /// Partitions of the topic produced to.
    pub partitions: i32,
    /// Directory for the log (a temporary subdirectory is created and removed).
    pub dir: PathBuf,
}

/// Resident memory around one request, KiB.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Peak {
    /// `VmRSS` just before it (the peak was reset to this).
    pub rss_before_kib: u64,
    /// `VmHWM` just after it.
    pub peak_kib: u64,
    /// `peak_kib` − `rss_before_kib`.
    pub growth_kib: u64,
}

/// Peak memory of the large requests.
#[derive(Debug, Clone, Serialize)]
pub struct ProduceMemory {
    /// Whether the peak could be reset before each request (else a peak may be an earlier
    /// one: an upper bound).
    pub hwm_reset: bool,
    /// Each request's, in order.
    pub per_request: Vec<Peak>,
    /// The largest growth, KiB.
    pub peak_growth_kib: u64,
    /// `peak_growth_kib` in bytes ÷ records of one request.
    pub bytes_per_record: f64,
    /// `peak_growth_kib` in bytes ÷ bytes of one request body.
    pub multiple_of_body: f64,
}

/// The request of 16 MiB of empty records, which must be refused.
#[derive(Debug, Clone, Serialize)]
pub struct Oversized {
    /// Body bytes.
    pub body_bytes: usize,
    /// Empty records in it.
    pub records: usize,
    /// HTTP status answered (413 expected).
    pub status: u16,
    /// `error_code` answered (41302 expected).
    pub error_code: Option<u64>,
    /// Wall-clock seconds to the answer.
    pub seconds: f64,
    /// Resident memory around it.
    pub memory: Peak,
    /// Its peak growth, KiB.
    pub peak_growth_kib: u64,
    /// Peak growth in bytes ÷ records in the body.
    pub bytes_per_record: f64,
    /// Peak growth ÷ body bytes.
    pub multiple_of_body: f64,
}

/// What [`run`] measured (the module doc says how).
#[derive(Debug, Clone, Serialize)]
pub struct ProduceReport {
    /// `"produce"`.
    pub bench: &'static str,
    /// Large requests measured.
    pub requests: usize,
    /// Records in each.
    pub records_per_request: usize,
    /// One of the records, as sent.
    pub record_example: String,
    /// Bytes of one request body.
    pub body_bytes: usize,
    /// Bytes of the answer to one (its offsets).
    pub response_bytes: usize,
    /// Partitions of the topic.
    pub partitions: i32,
    /// `http.max_request_bytes` of the server.
    pub max_request_bytes: usize,
    /// `http.max_records_per_request` of the server.
    pub max_records_per_request: usize,
    /// Rates over the large requests (bytes are request body bytes).
    pub produce: Rates,
    /// Their peak memory.
    pub memory: ProduceMemory,
    /// The refused request.
    pub oversized: Oversized,
}

const CT: &str = "application/vnd.kafka.json.v2+json";

fn record(i: usize) -> String {
    format!(
        r#"{{"key":"car-{}","value":{{"speed":88.5,"rpm":2500,"coolant_temp":90.25,"t":{}}}}}"#,
        i % 1000,
        1_700_000_000 + i
    )
}

fn body_of(records: usize) -> String {
    let mut s = String::with_capacity(records * 80 + 16);
    s.push_str(r#"{"records":["#);
    for i in 0..records {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&record(i));
    }
    s.push_str("]}");
    s
}

/// `{"records":[{},{},…]}` of at most `bytes` bytes; returns it and its record count.
fn empty_records_body(bytes: usize) -> (String, usize) {
    let mut s = String::with_capacity(bytes);
    s.push_str(r#"{"records":["#);
    let mut n = 0;
    while s.len() + 3 + 4 <= bytes {
        s.push_str("{},");
        n += 1;
    }
    s.push_str("{}]}");
    (s, n + 1)
}

/// The peak growth of what `f` does: a moment for the allocator to settle, the peak reset
/// to the resident size, `f`, the peak read.
async fn peak_of<T, F: std::future::Future<Output = anyhow::Result<T>>>(
    f: F,
) -> anyhow::Result<(T, Peak)> {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    reset_peak_rss();
    let before = rss().rss_kib;
    let out = f.await?;
    let peak = rss().hwm_kib;
    Ok((
        out,
        Peak {
            rss_before_kib: before,
            peak_kib: peak,
            growth_kib: peak.saturating_sub(before),
        },
    ))
}

/// Posts `body`; returns the status, the answer's size and the answer itself only when it
/// is an error (read in chunks, so that the client does not hold a large answer of offsets).
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: bytes::Bytes,
) -> anyhow::Result<(u16, usize, Vec<u8>)> {
    let mut r = client
        .post(url)
        .header("Content-Type", CT)
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let mut kept = Vec::new();
    let mut size = 0;
    while let Some(chunk) = r.chunk().await? {
        size += chunk.len();
        if status != 200 {
            kept.extend_from_slice(&chunk);
        }
    }
    Ok((status, size, kept))
}

fn per(growth_kib: u64, n: usize) -> f64 {
    round(growth_kib as f64 * 1024.0 / n.max(1) as f64)
}

/// Runs the benchmark (see the module doc).
pub async fn run(o: ProduceBenchOptions) -> anyhow::Result<ProduceReport> {
    let rest_config = RestConfig::default();
    anyhow::ensure!(
        o.requests > 0
            && o.records_per_request > 0
            && o.records_per_request <= rest_config.max_records_per_request,
        "bench produce: --requests must be positive and --records-per-request from 1 to {}",
        rest_config.max_records_per_request
    );
    anyhow::ensure!(
        o.partitions > 0,
        "bench produce: --partitions must be positive"
    );
    std::fs::create_dir_all(&o.dir)?;
    let dir = tempfile::Builder::new()
        .prefix("fleetwatch-bench-produce-")
        .tempdir_in(&o.dir)?;
    let embedded = EmbeddedConfig {
        fsync: FsyncPolicy::Interval,
        ..EmbeddedConfig::at(dir.path())
    }
    .build()?;
    let log: Arc<dyn Log> = Arc::new(embedded.clone());
    log.create_topic("bench", TopicConfig::with_partitions(o.partitions))
        .await?;

    let metrics = Metrics::new();
    let state = AppState::new(
        log.clone(),
        rest_config.clone(),
        RestMetrics::new(&metrics)?,
    );
    let router = layers(
        fleetwatch_rest::router(state),
        &HttpMetrics::new(&metrics)?,
        LayerOptions {
            server: "http",
            max_body_bytes: rest_config.max_request_bytes,
            max_header_bytes: Config::default().limits("http").max_header_bytes,
            shape: fleetwatch_rest::error::shape,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let maintenance = {
        let (l, c) = (embedded.clone(), cancel.clone());
        tokio::spawn(async move { l.run_maintenance(c).await })
    };
    let server = {
        let c = cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { c.cancelled().await })
                .await
        })
    };
    let result = measure(&o, &rest_config, addr, &*log).await;
    cancel.cancel();
    let _ = server.await;
    let _ = maintenance.await;
    drop(log);
    embedded.close().await?;
    drop(dir);
    result
}

async fn measure(
    o: &ProduceBenchOptions,
    rest_config: &RestConfig,
    addr: std::net::SocketAddr,
    log: &dyn Log,
) -> anyhow::Result<ProduceReport> {
    let url = format!("http://{addr}/topics/bench");
    let client = reqwest::Client::new();
    // Every body is built before anything is measured.
    let body = bytes::Bytes::from(body_of(o.records_per_request));
    let (empty, empty_records) = empty_records_body(rest_config.max_request_bytes);
    let empty = bytes::Bytes::from(empty);
    // Warm-up: connections, routing, the topic's first segment, one-time allocations.
    let warm = bytes::Bytes::from(body_of(1000));
    for _ in 0..3 {
        let (st, _, answer) = post(&client, &url, warm.clone()).await?;
        anyhow::ensure!(
            st == 200,
            "warm-up produce failed: {st} {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let hwm_reset = reset_peak_rss();

    let mut per_request = Vec::with_capacity(o.requests);
    let mut wall = 0.0;
    let mut cpu = 0.0;
    let mut response_bytes = 0;
    for _ in 0..o.requests {
        let ((phase, st, answer), peak) = peak_of(async {
            let timer = Timer::start();
            let (st, size, answer) = post(&client, &url, body.clone()).await?;
            response_bytes = size;
            anyhow::Ok((timer.stop(), st, answer))
        })
        .await?;
        anyhow::ensure!(
            st == 200,
            "produce of {} records failed: {st} {}",
            o.records_per_request,
            String::from_utf8_lossy(&answer)
        );
        wall += phase.seconds;
        cpu += phase.cpu;
        per_request.push(peak);
    }

    let ((oversized_seconds, status, answer), oversized_peak) = peak_of(async {
        let timer = Timer::start();
        let (st, _, answer) = post(&client, &url, empty.clone()).await?;
        anyhow::Ok((timer.stop().seconds, st, answer))
    })
    .await?;
    let error_code = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["error_code"].as_u64());
    anyhow::ensure!(
        status == 413 && error_code == Some(41302),
        "16 MiB of empty records: expected 413 / 41302, got {status} {}",
        String::from_utf8_lossy(&answer)
    );

    let mut stored = 0i64;
    for p in 0..o.partitions {
        stored += log.offset_for("bench", p, OffsetSpec::Latest).await?;
    }
    let expected = (3 * 1000 + o.requests * o.records_per_request) as i64;
    anyhow::ensure!(
        stored == expected,
        "the log holds {stored} records, {expected} were produced"
    );
    let records = o.requests * o.records_per_request;
    let peak = per_request.iter().map(|p| p.growth_kib).max().unwrap_or(0);
    let oversized_growth = oversized_peak.growth_kib;
    Ok(ProduceReport {
        bench: "produce",
        requests: o.requests,
        records_per_request: o.records_per_request,
        record_example: record(0),
        body_bytes: body.len(),
        response_bytes,
        partitions: o.partitions,
        max_request_bytes: rest_config.max_request_bytes,
        max_records_per_request: rest_config.max_records_per_request,
        produce: Rates::of(
            &super::Phase { seconds: wall, cpu },
            records,
            (o.requests * body.len()) as u64,
        ),
        memory: ProduceMemory {
            hwm_reset,
            per_request,
            peak_growth_kib: peak,
            bytes_per_record: per(peak, o.records_per_request),
            multiple_of_body: round(peak as f64 * 1024.0 / body.len() as f64),
        },
        oversized: Oversized {
            body_bytes: empty.len(),
            records: empty_records,
            status,
            error_code,
            seconds: round(oversized_seconds),
            memory: oversized_peak,
            peak_growth_kib: oversized_growth,
            bytes_per_record: per(oversized_growth, empty_records),
            multiple_of_body: round(oversized_growth as f64 * 1024.0 / empty.len() as f64),
        },
    })
}

/// The short table of `bench produce`.
pub fn table(r: &ProduceReport) -> String {
    let kib = |k: u64| human_bytes(k * 1024);
    format!(
        "produce        {:>14} rec/s {:>8} MiB/s {:>8} cpu-s/M  ({} requests of {} records, {} each)\n\
         peak memory    {:>14} per request = {} B/record = {}x the body\n\
         oversized      {} of {} empty records: {} / {}, peak +{} = {} B/record = {}x the body (before raw-JSON parsing: 1.9 GiB)\n",
        r.produce.records_per_sec,
        r.produce.mib_per_sec,
        r.produce.cpu_seconds_per_million,
        r.requests,
        r.records_per_request,
        human_bytes(r.body_bytes as u64),
        kib(r.memory.peak_growth_kib),
        r.memory.bytes_per_record,
        r.memory.multiple_of_body,
        human_bytes(r.oversized.body_bytes as u64),
        r.oversized.records,
        r.oversized.status,
        r.oversized
            .error_code
            .map_or("-".to_string(), |c| c.to_string()),
        kib(r.oversized.peak_growth_kib),
        r.oversized.bytes_per_record,
        r.oversized.multiple_of_body,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bodies_are_valid_json_of_the_stated_size() {
        let v: serde_json::Value = serde_json::from_str(&body_of(3)).unwrap();
        assert_eq!(v["records"].as_array().unwrap().len(), 3);
        assert_eq!(v["records"][1]["key"], "car-1");
        let (s, n) = empty_records_body(1 << 20);
        assert!(s.len() <= 1 << 20 && s.len() > (1 << 20) - 8, "{}", s.len());
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["records"].as_array().unwrap().len(), n);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_run_produces_everything_and_refuses_the_oversized_body() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(ProduceBenchOptions {
            requests: 2,
            records_per_request: 2000,
            partitions: 2,
            dir: dir.path().to_path_buf(),
        })
        .await
        .unwrap();
        assert_eq!(
            (r.oversized.status, r.oversized.error_code),
            (413, Some(41302))
        );
        assert!(r.oversized.records > 5_000_000, "{}", r.oversized.records);
        assert_eq!(r.memory.per_request.len(), 2);
        assert!(r.produce.records_per_sec > 0.0);
        assert_eq!(table(&r).lines().count(), 3);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "cleaned up"
        );
    }
}
