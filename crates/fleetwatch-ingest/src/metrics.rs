//! The MQTT proxy's metrics (connection counts come from the listener's `ConnMetrics`).

use fleetwatch_metrics::{Histogram, IntCounter, IntCounterVec, IntGauge, Metrics, MetricsResult};

/// Counters and histograms of the MQTT proxy, labelled by QoS (`0`, `1`, `2`) where it
/// applies. Label values are resolved once here, so the hot path only adds.
#[derive(Clone)]
pub struct MqttMetrics {
    messages_in: [IntCounter; 3],
    bytes_in: [IntCounter; 3],
    messages_out: [IntCounter; 3],
    bytes_out: [IntCounter; 3],
    /// Publish received → acknowledgement written, seconds (QoS 1 and 2).
    pub ack_latency: Histogram,
    rejected: IntCounterVec,
    /// Clients connected now (after a successful CONNECT).
    pub clients: IntGauge,
    /// Will messages appended.
    pub wills: IntCounter,
}

impl MqttMetrics {
    /// Registers them.
    pub fn new(metrics: &Metrics) -> MetricsResult<Self> {
        let by_qos = |name: &str, help: &str| -> MetricsResult<[IntCounter; 3]> {
            let v = metrics.counter(name, help, &["qos"])?;
            Ok([
                v.with_label_values(&["0"]),
                v.with_label_values(&["1"]),
                v.with_label_values(&["2"]),
            ])
        };
        Ok(MqttMetrics {
            messages_in: by_qos(
                "fleetwatch_mqtt_messages_in_total",
                "PUBLISH packets received from clients and appended, by QoS.",
            )?,
            bytes_in: by_qos(
                "fleetwatch_mqtt_bytes_in_total",
                "Payload bytes of PUBLISH packets received and appended, by QoS.",
            )?,
            messages_out: by_qos(
                "fleetwatch_mqtt_messages_out_total",
                "PUBLISH packets sent to subscribers, by QoS.",
            )?,
            bytes_out: by_qos(
                "fleetwatch_mqtt_bytes_out_total",
                "Payload bytes of PUBLISH packets sent to subscribers, by QoS.",
            )?,
            ack_latency: metrics
                .histogram(
                    "fleetwatch_mqtt_ack_latency_seconds",
                    "From a QoS 1/2 PUBLISH read to its PUBACK/PUBREC written (the append made durable in between).",
                    &[],
                    fleetwatch_metrics::latency_buckets(),
                )?
                .with_label_values(&[] as &[&str]),
            rejected: metrics.counter(
                "fleetwatch_mqtt_rejected_total",
                "Packets or connections refused, by reason (malformed, too_large, bad_protocol, bad_login, not_authorized, unmapped, append_failed, protocol_error, keep_alive, taken_over).",
                &["reason"],
            )?,
            clients: metrics.gauge1(
                "fleetwatch_mqtt_clients",
                "MQTT clients connected now (CONNECT accepted).",
            )?,
            wills: metrics
                .counter(
                    "fleetwatch_mqtt_wills_total",
                    "Will messages appended after a client went away without DISCONNECT.",
                    &[],
                )?
                .with_label_values(&[] as &[&str]),
        })
    }

    /// One publish of `bytes` payload bytes at `qos` appended.
    pub fn message_in(&self, qos: usize, bytes: usize) {
        self.messages_in[qos].inc();
        self.bytes_in[qos].inc_by(bytes as u64);
    }

    /// One publish of `bytes` payload bytes sent at `qos`.
    pub fn message_out(&self, qos: usize, bytes: usize) {
        self.messages_out[qos].inc();
        self.bytes_out[qos].inc_by(bytes as u64);
    }

    /// Something refused for `reason`.
    pub fn rejected(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }
}
