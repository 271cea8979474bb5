//! The `fleetwatch model …` commands over `fleetwatch-ml`: training with progress on
//! stderr and a JSON summary on stdout, evaluation, and the registry's operations.

use anyhow::Context;
use fleetwatch_core::Log;
use fleetwatch_ml::bundle::Bundle;
use fleetwatch_ml::data::RangeSpec;
use fleetwatch_ml::options::parse_option;
use fleetwatch_ml::registry::{
    ModelRef, ModelRegistry, PRODUCTION, Resolved, TrafficArm, TrafficSplit, VersionStatus,
};
use fleetwatch_ml::table::Feature;
use fleetwatch_ml::train::{TrainEvent, TrainJob};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// A training job from the command line's pieces (`options` as `KEY=VALUE`).
///
/// # Errors
/// An option without `=`, or given twice.
pub fn train_job(
    topic: &str,
    range: RangeSpec,
    features: Vec<Feature>,
    options: &[String],
) -> anyhow::Result<TrainJob> {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    for o in options {
        let (k, v) = parse_option(o)?;
        if map.insert(k.to_ascii_lowercase(), v).is_some() {
            anyhow::bail!("option {k} is given twice");
        }
    }
    Ok(TrainJob {
        topic: topic.to_string(),
        range,
        features,
        options: map,
    })
}

fn progress_line(e: &TrainEvent) -> String {
    match e {
        TrainEvent::Frozen(r) => format!("range frozen: {r} ({} records)", r.records()),
        TrainEvent::Read {
            rows,
            anomalous,
            seconds,
        } => {
            format!("read {rows} rows ({anomalous} labelled anomalous) in {seconds:.2} s")
        }
        TrainEvent::Epoch(r) => format!(
            "epoch {:>3}: loss {:.6}  val_loss {:.6}  {:.0} rows/s  {:.2} s",
            r.epoch, r.train_loss, r.val_loss, r.rows_per_sec, r.seconds
        ),
        TrainEvent::Fitted { rows, seconds } => format!("fitted on {rows} rows in {seconds:.2} s"),
    }
}

/// The summary `train` prints: what was trained and how well.
pub fn summary(bundle: &Bundle) -> Value {
    let m = &bundle.manifest;
    let metrics = m.metrics.as_ref().map(|e| {
        json!({
            "rows": e.rows, "positives": e.positives, "prevalence": e.prevalence,
            "roc_auc": e.roc_auc, "average_precision": e.average_precision,
            "precision": e.precision, "recall": e.recall, "f1": e.f1,
            "per_type": e.per_type, "warnings": e.warnings,
        })
    });
    json!({
        "algorithm": m.algorithm,
        "digest": bundle.digest(),
        "threshold": m.threshold,
        "training": m.training.as_ref().map(|t| json!({
            "range": t.range.to_string(), "rows": t.rows, "fitted_rows": t.fitted_rows, "splits": t.splits,
        })),
        "metrics_on_test": metrics,
        "stats": m.stats,
    })
}

/// Trains, prints progress to stderr, registers as the next version of `name` (unless
/// `None`), writes the bundle to `out` if given, and prints a JSON summary on stdout.
///
/// # Errors
/// What training or registration refuses.
pub async fn train(
    log: &dyn Log,
    reg: &ModelRegistry,
    job: &TrainJob,
    name: Option<&str>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let mut progress = |e: TrainEvent| eprintln!("{}", progress_line(&e));
    let trained = fleetwatch_ml::train::train(log, job, &mut progress).await?;
    eprintln!(
        "{:.0} rows/s ({:.2} s from rows in memory to the bundle)",
        trained.rows_per_sec, trained.fit_seconds
    );
    if let Some(dir) = out {
        trained.bundle.write_dir(dir)?;
        eprintln!("bundle written to {}", dir.display());
    }
    let mut s = summary(&trained.bundle);
    if let Some(name) = name {
        let version = reg.register(name, &trained.bundle).await?;
        let production = reg
            .resolve(&ModelRef::Model(name.to_string()))
            .await
            .ok()
            .map(|r| r.version);
        eprintln!(
            "registered {name}@{version}; production is {}",
            production.map_or("unset".to_string(), |v| format!("{name}@{v}"))
        );
        s["model"] = json!(name);
        s["version"] = json!(version);
        s["production"] = json!(production);
    }
    print_json(&s)
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// A reference resolved, with its version's bundle.
async fn resolve_bundle(
    reg: &ModelRegistry,
    reference: &str,
) -> anyhow::Result<(Resolved, Bundle)> {
    let r = reg.resolve(&ModelRef::parse(reference)?).await?;
    let b = reg.bundle(&r.name, r.version).await?;
    Ok((r, b))
}

/// Evaluates a version (its own test split, or `range`) and prints the evaluation as JSON.
///
/// # Errors
/// Unknown reference, no labels, read errors.
pub async fn evaluate(
    log: &dyn Log,
    reg: &ModelRegistry,
    reference: &str,
    range: Option<(String, RangeSpec)>,
    labels_topic: Option<&str>,
) -> anyhow::Result<()> {
    let (r, mut bundle) = resolve_bundle(reg, reference).await?;
    // An alias's threshold override is the threshold its traffic sees.
    bundle.manifest.threshold.value = r.threshold;
    let ev = fleetwatch_ml::train::evaluate(
        log,
        &bundle,
        range.as_ref().map(|(t, s)| (t.as_str(), s.clone())),
        labels_topic,
    )
    .await?;
    let mut v = serde_json::to_value(&ev)?;
    v["model"] = json!(r.name);
    v["version"] = json!(r.version);
    v["on"] = json!(match &range {
        None => "the test split of its training range".to_string(),
        Some((t, _)) => format!("every row of the range on {t}"),
    });
    print_json(&v)
}

/// Lists the models (a table, or JSON).
///
/// # Errors
/// Log errors.
pub async fn list(reg: &ModelRegistry, as_json: bool) -> anyhow::Result<()> {
    let models = reg.list().await?;
    if as_json {
        return print_json(&models);
    }
    println!(
        "{:<24} {:<18} {:>8} {:<28} {:<24}",
        "MODEL", "ALGORITHM", "VERSIONS", "ALIASES", "LATEST"
    );
    for m in models {
        let latest = m.versions.values().next_back();
        let aliases: Vec<String> = m
            .aliases
            .iter()
            .map(|(a, i)| format!("{a}={}", i.version))
            .collect();
        let broken = m
            .versions
            .values()
            .filter(|v| matches!(v.status, VersionStatus::Broken(_)))
            .count();
        println!(
            "{:<24} {:<18} {:>8} {:<28} {:<24}",
            m.name,
            latest.map_or("", |v| v.algorithm.as_str()),
            if broken > 0 {
                format!("{} ({broken} broken)", m.versions.len())
            } else {
                m.versions.len().to_string()
            },
            aliases.join(","),
            latest.map_or(String::new(), |v| format!("{} {}", v.version, v.created_at)),
        );
    }
    Ok(())
}

/// Shows a model (`m`: versions, aliases, production history) or a version's manifest.
///
/// # Errors
/// Unknown reference.
pub async fn show(reg: &ModelRegistry, reference: &str) -> anyhow::Result<()> {
    let r = ModelRef::parse(reference)?;
    if let ModelRef::Model(name) = &r {
        return print_json(&reg.model(name).await?);
    }
    let res = reg.resolve(&r).await?;
    let m = reg.model(&res.name).await?;
    let v = &m.versions[&res.version];
    let aliases: Vec<&String> = m
        .aliases
        .iter()
        .filter(|(_, a)| a.version == res.version)
        .map(|(n, _)| n)
        .collect();
    // Reading the bundle checks the local copy against the manifest (rebuilding it from the
    // log if it does not verify).
    let cache = match &v.status {
        VersionStatus::Ready => {
            let b = reg.bundle(&res.name, res.version).await?;
            json!({
                "dir": reg.cache_dir().join(&res.name).join(res.version.to_string()),
                "verified": true,
                "blobs": b.manifest.blobs,
            })
        }
        VersionStatus::Broken(_) => Value::Null,
    };
    print_json(&json!({
        "cache": cache,
        "model": res.name,
        "version": res.version,
        "status": v.status,
        "digest": v.digest,
        "aliases": aliases,
        "threshold": res.threshold,
        "manifest": v.manifest,
    }))
}

/// `promote m@v`.
///
/// # Errors
/// A reference without version or alias, unknown or broken version.
pub async fn promote(reg: &ModelRegistry, reference: &str) -> anyhow::Result<()> {
    let r = ModelRef::parse(reference)?;
    let v = reg.promote(&r).await?;
    println!("{}@{PRODUCTION} -> {v}", r.name());
    Ok(())
}

/// `rollback m`.
///
/// # Errors
/// No earlier holder.
pub async fn rollback(reg: &ModelRegistry, name: &str) -> anyhow::Result<()> {
    let v = reg.rollback(name).await?;
    println!("{name}@{PRODUCTION} -> {v} (rolled back)");
    Ok(())
}

/// `alias m NAME v [--threshold t]` / `alias m NAME --remove`.
///
/// # Errors
/// Bad alias, unknown or broken version.
pub async fn alias(
    reg: &ModelRegistry,
    name: &str,
    alias: &str,
    version: Option<i64>,
    threshold: Option<f64>,
    remove: bool,
) -> anyhow::Result<()> {
    if remove {
        reg.remove_alias(name, alias).await?;
        println!("{name}@{alias} removed");
        return Ok(());
    }
    let v = version.context("give the version the alias points at")?;
    reg.move_alias(name, alias, v, threshold).await?;
    match threshold {
        Some(t) => println!("{name}@{alias} -> {v} (threshold {t})"),
        None => println!("{name}@{alias} -> {v}"),
    }
    Ok(())
}

/// `delete m@v` / `delete m`.
///
/// # Errors
/// Unknown model or version; deleting production while other versions exist.
pub async fn delete(reg: &ModelRegistry, reference: &str) -> anyhow::Result<()> {
    match ModelRef::parse(reference)? {
        ModelRef::Model(name) => {
            reg.delete(&name, None).await?;
            println!("deleted model {name} (its bytes stay in the log)");
        }
        ModelRef::Version(name, v) => {
            reg.delete(&name, Some(v)).await?;
            println!("deleted {name}@{v} (its bytes stay in the log)");
        }
        ModelRef::Alias(name, a) => {
            anyhow::bail!(
                "delete takes m@VERSION or m, not an alias ({name}@{a}): remove it with `fleetwatch model alias {name} {a} --remove`"
            )
        }
    }
    Ok(())
}

/// `archive m@v` / `archive m@v --restore`.
///
/// # Errors
/// Not a version reference; an alias points at the version.
pub async fn archive(reg: &ModelRegistry, reference: &str, archived: bool) -> anyhow::Result<()> {
    let ModelRef::Version(name, v) = ModelRef::parse(reference)? else {
        anyhow::bail!("archive takes m@VERSION ({reference:?} is not one)");
    };
    reg.set_archived(&name, v, archived).await?;
    println!(
        "{name}@{v} {}",
        if archived { "archived" } else { "restored" }
    );
    Ok(())
}

/// `traffic m target=bp … [--shadow t] [--salt s]` (no arms: clear).
///
/// # Errors
/// A malformed pair, an unknown target, weights not summing to 10,000.
pub async fn traffic(
    reg: &ModelRegistry,
    name: &str,
    pairs: &[String],
    shadows: Vec<String>,
    salt: String,
) -> anyhow::Result<()> {
    let mut arms = Vec::new();
    for p in pairs {
        let (t, w) = p
            .split_once('=')
            .with_context(|| format!("{p:?}: expected TARGET=BASIS_POINTS, e.g. canary=1000"))?;
        let weight_bp: u32 = w
            .parse()
            .with_context(|| format!("{p:?}: the weight is not a whole number of basis points"))?;
        arms.push(TrafficArm {
            target: t.to_string(),
            weight_bp,
        });
    }
    let split = TrafficSplit {
        arms,
        shadows,
        salt,
    };
    reg.set_traffic(name, &split).await?;
    if split.arms.is_empty() {
        println!("{name}: traffic split cleared (everything to production)");
        return Ok(());
    }
    let text: Vec<String> = split
        .arms
        .iter()
        .map(|a| {
            format!(
                "{}={} ({:.2} % of routing keys)",
                a.target,
                a.weight_bp,
                f64::from(a.weight_bp) / 100.0
            )
        })
        .collect();
    println!("{name}: traffic {}", text.join(", "));
    if !split.shadows.is_empty() {
        println!("{name}: shadows {}", split.shadows.join(", "));
    }
    Ok(())
}

/// Exports a version to ONNX.
///
/// # Errors
/// Not an autoencoder, a feature that is not numeric, I/O.
pub async fn export_onnx(reg: &ModelRegistry, reference: &str, out: &Path) -> anyhow::Result<()> {
    let (Resolved { name, version, .. }, bundle) = resolve_bundle(reg, reference).await?;
    let bytes = fleetwatch_ml::onnx::export(&bundle)?;
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{name}@{version} -> {} ({} bytes, ONNX opset {})",
        out.display(),
        bytes.len(),
        fleetwatch_ml::onnx::OPSET
    );
    Ok(())
}
