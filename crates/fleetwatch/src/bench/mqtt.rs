//! `fleetwatch bench mqtt`: MQTT publish load from many connections on loopback against
//! fleetwatch's MQTT proxy (a `fleetwatch serve` child process, durable acknowledgements)
//! and, in the same run and with the same generator, against the machine's Mosquitto on
//! 127.0.0.1:1883 (which persists nothing).
//!
//! The generator is one Tokio thread pinned to one CPU; the fleetwatch server is pinned to
//! the other(s). Each connection keeps a window of QoS 1 publishes in flight and times each
//! from write to PUBACK; QoS 0 is sent as fast as the socket takes it, and for fleetwatch the
//! messages that landed in the log are counted from its `/metrics`. CPU seconds are the
//! server process's own (`/proc/<pid>/stat`), per million messages.

use anyhow::{Context, bail};
use bytes::BytesMut;
use fleetwatch_ingest::packet::{Codec, Connect, Packet, Publish, QoS, Version};
use serde::Serialize;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What to run.
#[derive(Debug, Clone)]
pub struct MqttBenchOptions {
    /// Connections.
    pub connections: usize,
    /// QoS 1 publishes in flight per connection.
    pub inflight: usize,
    /// Payload bytes.
    pub payload: usize,
    /// Seconds per phase.
    pub seconds: f64,
    /// The fleetwatch binary to run as the server.
    pub server_bin: PathBuf,
    /// Where the server's log goes.
    pub dir: PathBuf,
    /// Mosquitto to compare with (`None`: skipped).
    pub mosquitto: Option<SocketAddr>,
}

/// One phase's result.
#[derive(Debug, Serialize)]
pub struct PhaseReport {
    /// `fleetwatch_interval_qos1`, …
    pub name: String,
    /// QoS.
    pub qos: u8,
    /// Messages acknowledged (QoS 1) or written (QoS 0) per second.
    pub messages_per_sec: f64,
    /// For fleetwatch QoS 0: messages that reached the log, per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landed_per_sec: Option<f64>,
    /// Publish → PUBACK latency, µs (QoS 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_p50_us: Option<f64>,
    /// p99.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_p99_us: Option<f64>,
    /// Server CPU seconds per million messages (`None`: the server's pid is unknown).
    pub server_cpu_s_per_million: Option<f64>,
    /// Messages in the phase.
    pub messages: u64,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct MqttBenchReport {
    /// Connections.
    pub connections: usize,
    /// Window per connection.
    pub inflight: usize,
    /// Payload bytes.
    pub payload_bytes: usize,
    /// CPUs the generator thread was pinned to.
    pub generator_cpus: Vec<usize>,
    /// CPUs the fleetwatch server was pinned to.
    pub server_cpus: Vec<usize>,
    /// Every phase.
    pub phases: Vec<PhaseReport>,
    /// Errors of phases that could not run.
    pub errors: Vec<String>,
    /// The targets, checked (never asserted).
    pub targets: Targets,
}

/// Targets.
#[derive(Debug, Serialize)]
pub struct Targets {
    /// QoS 1, default policy, ≥ 200,000 msg/s.
    pub qos1_default_at_least_200k: Option<bool>,
    /// QoS 1, default policy, above Mosquitto's QoS 1.
    pub qos1_default_above_mosquitto: Option<bool>,
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// utime + stime of `pid`, seconds.
fn proc_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a constant.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz.max(1.0))
}

fn find_pid(comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let c = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (c.trim() == comm).then_some(pid)
    })
}

struct Load {
    messages: u64,
    seconds: f64,
    latencies_us: Vec<u32>,
}

async fn connect(addr: SocketAddr, id: &str) -> anyhow::Result<(tokio::net::TcpStream, Codec)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut codec = Codec::client(Version::V3_1_1, u32::MAX);
    let mut out = BytesMut::new();
    codec
        .encode(
            Packet::Connect(Box::new(Connect::new(Version::V3_1_1, id))),
            &mut out,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    s.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(64);
    loop {
        if let Some(p) = codec.decode(&mut buf).map_err(|e| anyhow::anyhow!("{e}"))? {
            match p {
                Packet::ConnAck(a) if a.code == 0 => return Ok((s, codec)),
                other => bail!("{addr}: CONNECT answered with {other:?}"),
            }
        }
        if s.read_buf(&mut buf).await? == 0 {
            bail!("{addr}: closed before CONNACK");
        }
    }
}

fn publish(
    codec: &mut Codec,
    out: &mut BytesMut,
    topic: &str,
    payload: &bytes::Bytes,
    qos: QoS,
    id: u16,
) {
    let _ = codec.encode(
        Packet::Publish(Box::new(Publish {
            topic: topic.into(),
            payload: payload.clone(),
            qos,
            retain: false,
            dup: false,
            packet_id: NonZeroU16::new(id),
            topic_alias: None,
            user_properties: Vec::new(),
            content_type: None,
        })),
        out,
    );
}

async fn one_connection(
    addr: SocketAddr,
    conn: usize,
    prefix: String,
    opts: MqttBenchOptions,
    qos: QoS,
    until: Instant,
) -> anyhow::Result<(u64, Vec<u32>)> {
    let (mut s, mut codec) = connect(addr, &format!("bench-{}-{conn}", std::process::id())).await?;
    let topic = format!("{prefix}{conn}/telemetry");
    let payload = bytes::Bytes::from(vec![b'x'; opts.payload]);
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut done = 0u64;
    let mut lat = Vec::new();
    if qos == QoS::AtMostOnce {
        while Instant::now() < until {
            for _ in 0..64 {
                publish(&mut codec, &mut out, &topic, &payload, qos, 0);
            }
            s.write_all(&out).await?;
            out.clear();
            done += 64;
        }
        return Ok((done, lat));
    }
    let window = opts.inflight.min(65_000);
    let mut sent_at: Vec<Option<Instant>> = vec![None; 65_536];
    let mut next_id: u16 = 0;
    let mut in_flight = 0usize;
    loop {
        let now = Instant::now();
        if now < until {
            while in_flight < window {
                next_id = next_id.wrapping_add(1).max(1);
                sent_at[usize::from(next_id)] = Some(now);
                publish(&mut codec, &mut out, &topic, &payload, qos, next_id);
                in_flight += 1;
            }
            s.write_all(&out).await?;
            out.clear();
        } else if in_flight == 0 {
            return Ok((done, lat));
        }
        if s.read_buf(&mut inbuf).await? == 0 {
            bail!("{addr}: connection closed");
        }
        while let Some(p) = codec
            .decode(&mut inbuf)
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            if let Packet::PubAck(id, _) = p
                && let Some(t) = sent_at[usize::from(id.get())].take()
            {
                in_flight -= 1;
                done += 1;
                lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
        }
    }
}

async fn load(
    addr: SocketAddr,
    prefix: &str,
    opts: &MqttBenchOptions,
    qos: QoS,
) -> anyhow::Result<Load> {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(opts.seconds);
    let tasks: Vec<_> = (0..opts.connections)
        .map(|c| {
            tokio::spawn(one_connection(
                addr,
                c,
                prefix.to_string(),
                opts.clone(),
                qos,
                until,
            ))
        })
        .collect();
    let mut messages = 0;
    let mut latencies_us = Vec::new();
    for t in tasks {
        let (n, l) = t.await??;
        messages += n;
        latencies_us.extend(l);
    }
    Ok(Load {
        messages,
        seconds: start.elapsed().as_secs_f64(),
        latencies_us,
    })
}

fn pct(v: &mut [u32], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    Some(f64::from(v[i]))
}

fn report(name: &str, qos: QoS, mut l: Load, cpu: Option<f64>, landed: Option<u64>) -> PhaseReport {
    let rate = l.messages as f64 / l.seconds;
    PhaseReport {
        name: name.into(),
        qos: qos.level(),
        messages_per_sec: super::round(rate),
        landed_per_sec: landed.map(|n| super::round(n as f64 / l.seconds)),
        ack_p50_us: pct(&mut l.latencies_us, 0.50),
        ack_p99_us: pct(&mut l.latencies_us, 0.99),
        server_cpu_s_per_million: cpu.map(|c| super::round(c / (l.messages.max(1) as f64) * 1e6)),
        messages: l.messages,
    }
}

/// A server process and its data directory, both gone when dropped.
struct Child {
    child: std::process::Child,
    dir: PathBuf,
    mqtt: SocketAddr,
    http: SocketAddr,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server(opts: &MqttBenchOptions, fsync: &str, cpus: &[usize]) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let dir = super::fresh_dir(&opts.dir, &format!("mqtt-{fsync}"))?;
    let config = dir.join("fleetwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[embedded]\ndata_dir = {:?}\nfsync = {fsync:?}\n[mqtt]\n[[mqtt.publish_map]]\npattern = \"bench/{{conn}}/telemetry\"\ntopic = \"bench.mqtt\"\nkey = \"{{conn}}\"\n",
            dir.join("data")
        ),
    )?;
    let ready = dir.join("ready");
    let mut cmd = std::process::Command::new(&opts.server_bin);
    cmd.arg("--config")
        .arg(&config)
        .args([
            "--log-level",
            "warn",
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--schema-registry-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--ksql-listen",
            "127.0.0.1:0",
            "--ready-file",
        ])
        .arg(&ready)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let cpus = cpus.to_vec();
    // SAFETY: between fork and exec only sched_setaffinity is called (async-signal-safe).
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &c in &cpus {
                libc::CPU_SET(c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", opts.server_bin.display()))?;
    let mut child = Child {
        child,
        dir: dir.clone(),
        mqtt: SocketAddr::from(([127, 0, 0, 1], 0)),
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && let Ok(m) = serde_json::from_str::<std::collections::BTreeMap<String, String>>(&text)
        {
            child.mqtt = m
                .get("mqtt")
                .context("no mqtt listener in the ready file")?
                .parse()?;
            child.http = m.get("http").context("no http listener")?.parse()?;
            return Ok(child);
        }
        if let Some(status) = child.child.try_wait()? {
            bail!("fleetwatch serve exited with {status} before it was ready");
        }
        if Instant::now() > deadline {
            bail!("fleetwatch serve not ready within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn landed_qos0(http: SocketAddr) -> Option<u64> {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("fleetwatch_mqtt_messages_in_total{qos=\"0\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Runs every phase.
pub async fn run(opts: MqttBenchOptions) -> anyhow::Result<MqttBenchReport> {
    let n = online_cpus();
    let generator_cpus = vec![n - 1];
    let server_cpus: Vec<usize> = if n > 1 { (0..n - 1).collect() } else { vec![0] };
    super::pin_to_cpu(generator_cpus[0]);
    let mut phases = Vec::new();
    let mut errors = Vec::new();
    for fsync in ["interval", "always"] {
        match start_server(&opts, fsync, &server_cpus) {
            Ok(server) => {
                let pid = server.child.id();
                let qos_list: &[QoS] = if fsync == "interval" {
                    &[QoS::AtLeastOnce, QoS::AtMostOnce]
                } else {
                    &[QoS::AtLeastOnce]
                };
                for &qos in qos_list {
                    let before_cpu = proc_cpu(pid);
                    let before_landed = landed_qos0(server.http).await;
                    match load(server.mqtt, "bench/", &opts, qos).await {
                        Ok(l) => {
                            let cpu = proc_cpu(pid).zip(before_cpu).map(|(a, b)| a - b);
                            let landed = if qos == QoS::AtMostOnce {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                landed_qos0(server.http)
                                    .await
                                    .zip(before_landed)
                                    .map(|(a, b)| a - b)
                            } else {
                                None
                            };
                            phases.push(report(
                                &format!("fleetwatch_{fsync}_qos{}", qos.level()),
                                qos,
                                l,
                                cpu,
                                landed,
                            ));
                        }
                        Err(e) => {
                            errors.push(format!("fleetwatch {fsync} qos{}: {e:#}", qos.level()))
                        }
                    }
                }
            }
            Err(e) => errors.push(format!("fleetwatch {fsync}: {e:#}")),
        }
    }
    if let Some(addr) = opts.mosquitto {
        let pid = find_pid("mosquitto");
        let prefix = format!("fwbench/{}/", std::process::id());
        for qos in [QoS::AtLeastOnce, QoS::AtMostOnce] {
            let before = pid.and_then(proc_cpu);
            match load(addr, &prefix, &opts, qos).await {
                Ok(l) => {
                    let cpu = pid.and_then(proc_cpu).zip(before).map(|(a, b)| a - b);
                    phases.push(report(
                        &format!("mosquitto_qos{}", qos.level()),
                        qos,
                        l,
                        cpu,
                        None,
                    ));
                }
                Err(e) => errors.push(format!("mosquitto {addr} qos{}: {e:#}", qos.level())),
            }
        }
    }
    let rate = |name: &str| {
        phases
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.messages_per_sec)
    };
    let fw = rate("fleetwatch_interval_qos1");
    let targets = Targets {
        qos1_default_at_least_200k: fw.map(|r| r >= 200_000.0),
        qos1_default_above_mosquitto: fw.zip(rate("mosquitto_qos1")).map(|(a, b)| a > b),
    };
    Ok(MqttBenchReport {
        connections: opts.connections,
        inflight: opts.inflight,
        payload_bytes: opts.payload,
        generator_cpus,
        server_cpus,
        phases,
        errors,
        targets,
    })
}

/// The table for stderr.
pub fn table(r: &MqttBenchReport) -> String {
    let mut s = format!(
        "mqtt: {} connections × {} in flight, {} B payloads; generator on CPU {:?}, server on {:?}\n",
        r.connections, r.inflight, r.payload_bytes, r.generator_cpus, r.server_cpus
    );
    for p in &r.phases {
        s.push_str(&format!(
            "  {:<26} {:>12.0} msg/s  p50 {:>8} µs  p99 {:>8} µs  cpu/M {:>7}\n",
            p.name,
            p.messages_per_sec,
            p.ack_p50_us.map_or("-".into(), |v| format!("{v:.0}")),
            p.ack_p99_us.map_or("-".into(), |v| format!("{v:.0}")),
            p.server_cpu_s_per_million
                .map_or("-".into(), |v| format!("{v:.2}")),
        ));
    }
    for e in &r.errors {
        s.push_str(&format!("  error: {e}\n"));
    }
    s
}
