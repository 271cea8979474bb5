//! The SQL engine's metrics, defined once: what persistent queries read, write and fail,
//! how long a batch takes, how many queries run and how many push queries are open.

use fleetwatch_metrics::{
    HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Metrics, MetricsResult, exponential_buckets,
};

/// The engine's metrics (clone per query).
#[derive(Clone, Debug)]
pub struct SqlMetrics {
    /// Source records read, by query.
    pub records_in: IntCounterVec,
    /// Records written to the sink, by query.
    pub records_out: IntCounterVec,
    /// Rows that failed (to the processing log), by query and kind.
    pub rows_failed: IntCounterVec,
    /// Seconds per processed batch (decode → evaluate → encode → append), by query.
    pub batch_seconds: HistogramVec,
    /// Persistent queries by state.
    pub queries: IntGaugeVec,
    /// Push and pull queries streaming to clients now.
    pub push_queries: IntGauge,
}

impl SqlMetrics {
    /// Registers them (once per process).
    pub fn new(m: &Metrics) -> MetricsResult<Self> {
        Ok(SqlMetrics {
            records_in: m.counter("fleetwatch_sql_records_in_total", "Source records read by persistent queries.", &["query"])?,
            records_out: m.counter("fleetwatch_sql_records_out_total", "Records persistent queries wrote to their sinks.", &["query"])?,
            rows_failed: m.counter(
                "fleetwatch_sql_rows_failed_total",
                "Rows a persistent query could not decode, evaluate or write (sent to the processing log).",
                &["query", "kind"],
            )?,
            batch_seconds: m.histogram(
                "fleetwatch_sql_batch_seconds",
                "Time to process one batch of a persistent query: decode, evaluate, encode, append.",
                &["query"],
                exponential_buckets(0.0001, 2.0, 16).unwrap_or_default(),
            )?,
            queries: m.gauge("fleetwatch_sql_queries", "Persistent queries by state (RUNNING, ERROR).", &["state"])?,
            push_queries: m.gauge1("fleetwatch_sql_push_queries", "Push and pull queries streaming to clients.")?,
        })
    }
}
