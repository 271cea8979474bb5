//! `fleetwatch model …`: train, evaluate and manage models in the registry (`_fw_models`
//! in the configured log; the local cache under `<data_dir>/models`).
//!
//! These open the log directly: with a `serve` running on the embedded backend, stop it
//! first (the model server's REST API, which will let them go through a running server,
//! comes with the TF Serving issue).

use crate::cmd::Global;
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use fleetwatch::models;
use fleetwatch_ml::data::RangeSpec;
use fleetwatch_ml::table::Feature;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Train a model on a bounded replay of a topic and register it as the next version.
    Train(TrainArgs),
    /// Evaluate a version on the test split of its own training range (the same rows), or
    /// on a range of any topic: ROC-AUC, average precision, P/R/F1, confusion, histogram,
    /// per anomaly type (JSON).
    Evaluate(EvaluateArgs),
    /// List models with their versions and aliases.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a model (`m`), or one version's manifest (`m@3`, `m@canary`), as JSON.
    Show {
        /// `m`, `m@3` or `m@alias`.
        reference: String,
    },
    /// Move `production` to a version: `promote m@3` or `promote m@canary`.
    Promote {
        /// `m@3` or `m@alias`.
        reference: String,
    },
    /// Move `production` back to its previous holder.
    Rollback {
        /// The model.
        name: String,
    },
    /// Point an alias at a version (`alias m canary 3`), optionally with a threshold
    /// override; or remove it (`alias m canary --remove`).
    Alias(AliasArgs),
    /// Archive a version (`archive m@3`; `--restore` brings it back): a version flag, not an
    /// alias — the version stays reachable by number but takes no new alias or rollback.
    Archive {
        /// `m@3`.
        reference: String,
        /// Un-archive.
        #[arg(long)]
        restore: bool,
    },
    /// Set the model's A/B traffic split over aliases or versions, in basis points summing to
    /// 10,000 (`traffic m production=9000 canary=1000 --shadow 7 --salt ab-11`), or `--clear`
    /// it. Requests naming just `m` go by it: bucket = murmur2(salt ‖ routing key) mod 10,000.
    Traffic {
        /// The model.
        name: String,
        /// `ALIAS=BASIS_POINTS` or `VERSION=BASIS_POINTS`…
        #[arg(value_name = "TARGET=BP", required_unless_present = "clear")]
        arms: Vec<String>,
        /// A version or alias that also scores every request, off the output path (repeatable).
        #[arg(long = "shadow", value_name = "TARGET")]
        shadows: Vec<String>,
        /// Hashed in front of the routing key, so buckets do not follow partitioning.
        #[arg(long, default_value = "")]
        salt: String,
        /// Remove the split (everything to `production`).
        #[arg(long, conflicts_with_all = ["arms", "shadows"])]
        clear: bool,
    },
    /// Delete a version (`m@3`) or a whole model (`m`): a tombstone in the log; the bytes
    /// stay in the topic until its retention (infinite) removes them.
    Delete {
        /// `m@3` or `m`.
        reference: String,
    },
    /// Export a version to another format (ONNX: autoencoders).
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The model name (`[a-z0-9_.-]{1,128}`).
    pub name: String,
    /// The source topic.
    #[arg(long, short = 't')]
    pub topic: String,
    /// The range: `all`, `time:FROM..UNTIL` (epoch ms or ISO-8601 UTC, either side may be
    /// empty) or `P:START-END,…` (exact offsets).
    #[arg(long, default_value = "all")]
    pub range: String,
    /// Input features, comma-separated: `speed_kmh,rpm,powertrain:string`.
    #[arg(long, short = 'f', value_delimiter = ',', required = true)]
    pub features: Vec<String>,
    /// Model options KEY=VALUE (BigQuery ML names: `model_type=autoencoder`,
    /// `hidden_units=[16,8,16]`, `data_split_col=ts`, `labels_topic=labels`, …); repeatable.
    #[arg(long = "option", short = 'o', value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Shorthand for `-o model_type=…`.
    #[arg(long)]
    pub model_type: Option<String>,
    /// Train and print, but do not register.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the bundle into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// `m`, `m@3` or `m@alias`.
    pub reference: String,
    /// Evaluate on this topic instead of the version's own test split.
    #[arg(long, short = 't')]
    pub topic: Option<String>,
    /// The range on `--topic` (default all).
    #[arg(long, default_value = "all")]
    pub range: String,
    /// The labels topic (default: the one the version was trained with).
    #[arg(long)]
    pub labels_topic: Option<String>,
}

#[derive(Args, Debug)]
pub struct AliasArgs {
    /// The model.
    pub name: String,
    /// The alias (`[a-z][a-z0-9_.-]{0,63}`).
    pub alias: String,
    /// The version it points at.
    #[arg(value_name = "VERSION", required_unless_present = "remove")]
    pub target: Option<i64>,
    /// A threshold that overrides the version's, for traffic through this alias.
    #[arg(long, conflicts_with = "remove")]
    pub threshold: Option<f64>,
    /// Remove the alias.
    #[arg(long)]
    pub remove: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ExportFormat {
    /// ONNX (opset 17): preprocessing and the network in one graph; input `features`
    /// `[N, F]` float, output `score` `[N]`.
    Onnx,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// `m`, `m@3` or `m@alias`.
    pub reference: String,
    /// The format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The file to write.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

/// Runs it.
pub fn run(g: &Global, cmd: Cmd) -> anyhow::Result<()> {
    let config = g.config()?;
    if g.server.is_some() {
        bail!(
            "fleetwatch model does not go through --server yet: it opens the log itself (the model server's API comes later)"
        );
    }
    if config.log.backend == fleetwatch::config::Backend::Embedded
        && let Some(f) = fleetwatch::remote::running_server(&config.embedded.data_dir)
    {
        bail!(
            "a server ({}) owns the data directory {}: stop it first (fleetwatch model opens the log itself)",
            f.http,
            config.embedded.data_dir.display()
        );
    }
    let cache = config.embedded.data_dir.join("models");
    crate::cmd::with_log(&config, |log| async move {
        let reg = fleetwatch_ml::registry::ModelRegistry::open(log.clone(), &cache)
            .await
            .context("opening the model registry")?;
        match cmd {
            Cmd::Train(a) => {
                let mut options = Vec::with_capacity(a.options.len() + 1);
                if let Some(t) = &a.model_type {
                    options.push(format!("model_type={t}"));
                }
                options.extend(a.options.iter().cloned());
                let features = a
                    .features
                    .iter()
                    .map(|f| Feature::parse(f).map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let job =
                    models::train_job(&a.topic, RangeSpec::parse(&a.range)?, features, &options)?;
                let name = (!a.dry_run).then_some(a.name.as_str());
                if !a.dry_run {
                    fleetwatch_ml::registry::check_name(&a.name)?;
                }
                models::train(log.as_ref(), &reg, &job, name, a.out.as_deref()).await
            }
            Cmd::Evaluate(a) => {
                let range = match &a.topic {
                    Some(t) => Some((t.clone(), RangeSpec::parse(&a.range)?)),
                    None => None,
                };
                models::evaluate(
                    log.as_ref(),
                    &reg,
                    &a.reference,
                    range,
                    a.labels_topic.as_deref(),
                )
                .await
            }
            Cmd::List { json } => models::list(&reg, json).await,
            Cmd::Show { reference } => models::show(&reg, &reference).await,
            Cmd::Promote { reference } => models::promote(&reg, &reference).await,
            Cmd::Rollback { name } => models::rollback(&reg, &name).await,
            Cmd::Alias(a) => {
                models::alias(&reg, &a.name, &a.alias, a.target, a.threshold, a.remove).await
            }
            Cmd::Delete { reference } => models::delete(&reg, &reference).await,
            Cmd::Archive { reference, restore } => {
                models::archive(&reg, &reference, !restore).await
            }
            Cmd::Traffic {
                name,
                arms,
                shadows,
                salt,
                clear: _,
            } => models::traffic(&reg, &name, &arms, shadows, salt).await,
            Cmd::Export(a) => match a.format {
                ExportFormat::Onnx => models::export_onnx(&reg, &a.reference, &a.out).await,
            },
        }
    })
}
