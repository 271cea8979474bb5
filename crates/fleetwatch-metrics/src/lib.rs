//! # fleetwatch-metrics — the registry handle every component registers its metrics in
//!
//! Owns the one [`Metrics`] handle (a cloneable `prometheus::Registry`), helpers that build
//! and register a counter, gauge or histogram in one call ([`Metrics::counter`], …), the text
//! exposition served at `/metrics` (Prometheus text format 0.0.4, which Debian's `promtool`
//! accepts; OpenMetrics output is not), and [`lint`], the naming rules every metric must
//! follow (checked over the whole registry of a running server by the app's tests).
//!
//! Each component crate defines its own metrics struct — names, labels and help written once —
//! and builds it from the handle when the component is built. This crate must not know any
//! component: it sits below all of them, next to `fleetwatch-core`.

use prometheus::{Encoder, HistogramOpts, Opts, Registry, TextEncoder};
use thiserror::Error;

pub use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, exponential_buckets,
    linear_buckets,
};

/// A metric that could not be defined: a malformed name or labels, or a name registered twice.
#[derive(Debug, Error)]
#[error("metric {name}: {source}")]
pub struct MetricsError {
    /// The metric's name.
    pub name: String,
    /// What prometheus said.
    #[source]
    pub source: prometheus::Error,
}

/// Result of defining a metric.
pub type MetricsResult<T> = Result<T, MetricsError>;

/// The registry handle shared by every component of one process (cheap to clone).
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Registry,
}

/// Latency buckets in seconds from 10 µs to ≈ 10 s (×2 each), for request and append latencies.
pub fn latency_buckets() -> Vec<f64> {
    (0..21).map(|i| 0.000_01 * f64::powi(2.0, i)).collect()
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Metrics::default()
    }

    fn register<C: prometheus::core::Collector + Clone + 'static>(
        &self,
        name: &str,
        c: C,
    ) -> MetricsResult<C> {
        self.registry
            .register(Box::new(c.clone()))
            .map_err(|source| MetricsError {
                name: name.to_string(),
                source,
            })?;
        Ok(c)
    }

    fn err(name: &str) -> impl FnOnce(prometheus::Error) -> MetricsError + '_ {
        move |source| MetricsError {
            name: name.to_string(),
            source,
        }
    }

    /// Defines and registers a counter family (`name` must end in `_total`).
    pub fn counter(&self, name: &str, help: &str, labels: &[&str]) -> MetricsResult<IntCounterVec> {
        let c = IntCounterVec::new(Opts::new(name, help), labels).map_err(Self::err(name))?;
        self.register(name, c)
    }

    /// Defines and registers a gauge family.
    pub fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> MetricsResult<IntGaugeVec> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).map_err(Self::err(name))?;
        self.register(name, g)
    }

    /// Defines and registers a gauge without labels.
    pub fn gauge1(&self, name: &str, help: &str) -> MetricsResult<IntGauge> {
        let g = IntGauge::new(name, help).map_err(Self::err(name))?;
        self.register(name, g)
    }

    /// Defines and registers a histogram family with these buckets.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Vec<f64>,
    ) -> MetricsResult<HistogramVec> {
        let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
            .map_err(Self::err(name))?;
        self.register(name, h)
    }

    /// The underlying registry (for collectors this crate has no helper for).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every registered metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The naming rules, applied to a text exposition: every family is `fleetwatch_*`, has HELP
/// text, counters end in `_total`, and units are base units (`_seconds`, `_bytes`, never
/// `_ms`, `_milliseconds`, `_kb`…). Returns one line per violation (empty: all good).
pub fn lint(exposition: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut helped = std::collections::HashSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, help)) = rest.split_once(' ') {
                if help.trim().is_empty() {
                    problems.push(format!("{name}: empty HELP text"));
                }
                helped.insert(name.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (Some(name), Some(kind)) = (it.next(), it.next()) else {
                problems.push(format!("malformed TYPE line: {line}"));
                continue;
            };
            if !name.starts_with("fleetwatch_") {
                problems.push(format!("{name}: not in the fleetwatch_ namespace"));
            }
            if kind == "counter" && !name.ends_with("_total") {
                problems.push(format!("{name}: a counter must end in _total"));
            }
            if kind != "counter" && name.ends_with("_total") {
                problems.push(format!("{name}: only counters end in _total ({kind})"));
            }
            for bad in [
                "_ms",
                "_millis",
                "_milliseconds",
                "_us",
                "_kb",
                "_mb",
                "_kib",
                "_mib",
            ] {
                if name.contains(&format!("{bad}_")) || name.ends_with(bad) {
                    problems.push(format!(
                        "{name}: use base units (seconds, bytes), not {bad}"
                    ));
                }
            }
            if !helped.contains(name) {
                problems.push(format!("{name}: no HELP line"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defines_registers_and_lints() {
        let m = Metrics::new();
        let c = m
            .counter("fleetwatch_test_events_total", "Events seen.", &["topic"])
            .unwrap();
        c.with_label_values(&["t"]).inc_by(3);
        let h = m
            .histogram(
                "fleetwatch_test_latency_seconds",
                "Latency.",
                &[],
                latency_buckets(),
            )
            .unwrap();
        h.with_label_values(&[] as &[&str]).observe(0.01);
        m.gauge1("fleetwatch_test_open", "Open things.")
            .unwrap()
            .set(2);
        let text = m.encode();
        assert!(
            text.contains("fleetwatch_test_events_total{topic=\"t\"} 3"),
            "{text}"
        );
        assert_eq!(lint(&text), Vec::<String>::new());
        let twice = m.counter("fleetwatch_test_events_total", "Again.", &["topic"]);
        assert!(
            twice
                .unwrap_err()
                .to_string()
                .contains("fleetwatch_test_events_total")
        );
    }

    #[test]
    fn lint_names_each_violation() {
        let m = Metrics::new();
        // A family is only exported once it has a child.
        m.counter("fleetwatch_bad_counter", "No suffix.", &[])
            .unwrap()
            .with_label_values(&[] as &[&str])
            .inc();
        m.gauge1("other_gauge", "Outside.").unwrap();
        m.gauge1("fleetwatch_wait_ms", "Not a base unit.").unwrap();
        m.gauge1("fleetwatch_wrong_total", "Gauge named like a counter.")
            .unwrap();
        let problems = lint(&m.encode()).join("\n");
        for want in [
            "fleetwatch_bad_counter: a counter must end in _total",
            "other_gauge: not in the fleetwatch_ namespace",
            "fleetwatch_wait_ms: use base units",
            "fleetwatch_wrong_total: only counters end in _total",
        ] {
            assert!(problems.contains(want), "{want} missing from:\n{problems}");
        }
    }
}
