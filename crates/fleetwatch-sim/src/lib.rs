//! # fleetwatch-sim — a car fleet with payments and labelled anomalies
//!
//! A deterministic generator of connected-car data: `N` cars (default 1,000) drive routes
//! between real cities of southern Germany (Munich, Stuttgart, Nuremberg and around: urban
//! exits with traffic lights, highway legs, urban entries, parking, fuel and charging stops),
//! emit one telemetry event per simulated tick, pay for in-car digital services, and have
//! sensor faults and card fraud injected into their data. Ground truth comes out as separate
//! label events, one per anomaly *episode*, never inside the events themselves.
//!
//! It owns the physical model, the payment and fraud model, the anomaly episodes, the JSON
//! shapes of the three streams ([`Stream`]) and the `cardata-v1` record of the reference
//! demo ([`Schema::CardataV1`]). It is pure: no I/O, no clock, no threads, no async runtime —
//! the `fleetwatch sim` command drives it and sends its batches to files, the log, MQTT or
//! HTTP. It must not know any of those.
//!
//! ## Determinism
//!
//! The same [`SimConfig`] gives the same bytes on any machine: every car has its own
//! xoshiro256++ stream seeded from [`SimConfig::seed`] and its index through SplitMix64, the
//! transcendental functions are computed with `+ − × ÷` only, and output never depends on
//! hash-map order or on how many ticks go into one [`Batch`].
//!
//! ## Use
//!
//! ```
//! use fleetwatch_sim::{Batch, SimConfig, Simulator, Stream};
//! let mut sim = Simulator::new(SimConfig { cars: 10, ..SimConfig::default() })?;
//! let mut batch = Batch::new();
//! for _ in 0..60 {
//!     sim.tick(&mut batch); // one simulated second: 10 telemetry events, maybe payments
//! }
//! sim.finish(&mut batch); // labels of the episodes still open
//! for e in batch.iter() {
//!     assert!(matches!(e.stream, Stream::Telemetry | Stream::Payment | Stream::Label));
//!     assert!(e.json.starts_with(b"{"));
//! }
//! # Ok::<(), fleetwatch_sim::SimError>(())
//! ```
//!
//! ## Streams
//!
//! **Telemetry** (schema `fleetwatch`; key: the VIN), every field always present, numbers as
//! JSON numbers: `event_id` (`"<vin>-t-<seq>"`), `vin`, `ts` (epoch ms), `powertrain`
//! (`"ice"` | `"ev"`), `lat`, `lon` (6 decimals), `speed_kmh`, `rpm` (int; an EV reports its
//! motor's), `gear` (int; 0 = neutral / parked, 1–6; an EV 0 or 1), `engine_temp_c` (EV: the
//! drive motor), `coolant_temp_c` (EV: the battery coolant loop), `oil_pressure_kpa` (EV:
//! always 0, it has no oil circuit), `battery_v` (the 12 V system), `tyre_fl_kpa`,
//! `tyre_fr_kpa`, `tyre_rl_kpa`, `tyre_rr_kpa`, `energy_level_pct` (ICE: fuel tank, EV:
//! traction battery), `odometer_km` (3 decimals), `dtc` (array of OBD-II codes, normally
//! empty).
//!
//! **Telemetry** (schema `cardata-v1`; key: `car`): the reference demo's record, fields as in
//! [`CARDATA_V1_AVSC`]: `time` (epoch **seconds**), `car` (the VIN), `coolant_temp`,
//! `intake_air_temp`, `intake_air_flow_speed`, `battery_percentage`, `battery_voltage`,
//! `current_draw`, `speed`, `engine_vibration_amplitude`, `throttle_pos`,
//! `tire_pressure_1_1` … `tire_pressure_2_2` (ints, psi), `accelerometer_1_1_value` …
//! `accelerometer_2_2_value`, `control_unit_firmware` (int). It has no `event_id`: its
//! events are named `"<car>-t-<seq>"` in labels, `seq` being the tick number (0 at
//! [`SimConfig::start_ms`]). No payments in this mode.
//!
//! **Payment** (key: the VIN): `event_id` (`"<vin>-p-<seq>"`), `ts`, `vin`, `account_id`,
//! `card_number` (16 digits, Luhn-valid, test BINs), `card_holder`, `amount` (2 decimals),
//! `currency`, `merchant_category` ([`MERCHANT_CATEGORIES`]), `merchant_id`, `lat`, `lon`
//! (where the payment happened). [`PII_FIELDS`] lists the personal fields.
//!
//! **Label** (key: the episode's key): `event_id` (the episode's **first** event),
//! `key`, `type` ([`AnomalyType::name`]), `kind` (`"sensor"` | `"fraud"`), `start_ts`,
//! `end_ts` (the first and last event's ts; equal for a single-event episode), `events`
//! (how many events the episode spans). Emitted in the tick the episode ends (its ts is
//! `end_ts`), or by [`Simulator::finish`] for episodes still open, cut at their last event.
//! During a fraud episode every payment of that car with `start_ts ≤ ts ≤ end_ts` is
//! fraudulent; during a sensor episode every telemetry event of that car in the range is
//! inside the fault.

pub mod geo;
mod identity;
mod json;
pub mod model;
pub mod rng;
mod sim;

pub use identity::{luhn_valid, vin_is_valid};
pub use sim::{Simulator, Stats};

use std::fmt;
use std::str::FromStr;

/// The Avro schema of `cardata-v1` (the repository's `schemas/cardata-v1.avsc`).
pub const CARDATA_V1_AVSC: &str = include_str!("../../../schemas/cardata-v1.avsc");

/// The fields of a payment that identify a person: what a PII-masking query must remove.
pub const PII_FIELDS: [&str; 3] = ["card_number", "card_holder", "account_id"];

/// Every `merchant_category` a payment can have.
pub const MERCHANT_CATEGORIES: [&str; 6] = [
    "fuel",
    "charging",
    "parking",
    "entertainment",
    "tolls",
    "food",
];

/// The telemetry fields of schema `fleetwatch`, in output order.
pub const TELEMETRY_FIELDS: [&str; 20] = [
    "event_id",
    "vin",
    "ts",
    "powertrain",
    "lat",
    "lon",
    "speed_kmh",
    "rpm",
    "gear",
    "engine_temp_c",
    "coolant_temp_c",
    "oil_pressure_kpa",
    "battery_v",
    "tyre_fl_kpa",
    "tyre_fr_kpa",
    "tyre_rl_kpa",
    "tyre_rr_kpa",
    "energy_level_pct",
    "odometer_km",
    "dtc",
];

/// The payment fields, in output order.
pub const PAYMENT_FIELDS: [&str; 12] = [
    "event_id",
    "ts",
    "vin",
    "account_id",
    "card_number",
    "card_holder",
    "amount",
    "currency",
    "merchant_category",
    "merchant_id",
    "lat",
    "lon",
];

/// The label fields, in output order (the first five are a contract other components join on).
pub const LABEL_FIELDS: [&str; 7] = [
    "event_id", "key", "type", "kind", "start_ts", "end_ts", "events",
];

/// Which of the three streams an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Car telemetry (either schema).
    Telemetry,
    /// Payments.
    Payment,
    /// Ground-truth labels.
    Label,
}

impl Stream {
    /// `telemetry`, `payment`, `label`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Telemetry => "telemetry",
            Stream::Payment => "payment",
            Stream::Label => "label",
        }
    }

    /// All three, in order.
    pub const ALL: [Stream; 3] = [Stream::Telemetry, Stream::Payment, Stream::Label];
}

/// The telemetry record the simulator emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schema {
    /// fleetwatch's telemetry, with payments.
    #[default]
    Fleetwatch,
    /// The reference demo's `cardata-v1` record, without payments.
    CardataV1,
}

impl Schema {
    /// `fleetwatch` or `cardata-v1`.
    pub fn name(self) -> &'static str {
        match self {
            Schema::Fleetwatch => "fleetwatch",
            Schema::CardataV1 => "cardata-v1",
        }
    }
}

impl FromStr for Schema {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s {
            "fleetwatch" => Ok(Schema::Fleetwatch),
            "cardata-v1" => Ok(Schema::CardataV1),
            _ => Err(SimError::UnknownName {
                what: "schema",
                name: s.to_string(),
                known: "fleetwatch, cardata-v1".to_string(),
            }),
        }
    }
}

/// Whether an anomaly is in the telemetry or in the payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A sensor fault, in telemetry.
    Sensor,
    /// Card fraud, in payments.
    Fraud,
}

impl AnomalyKind {
    /// `sensor` or `fraud`.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Sensor => "sensor",
            AnomalyKind::Fraud => "fraud",
        }
    }
}

/// The anomalies the simulator injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyType {
    /// Coolant and engine temperature drift up over minutes (up to +30 °C × magnitude); DTC
    /// `P0217` (EV: `P0A2F`) in the last fifth of the episode.
    Overheating,
    /// One tyre's pressure falls steadily, by 60 kPa × magnitude over the episode.
    TyreLeak,
    /// One sensor repeats its value of the episode's first event exactly.
    StuckSensor,
    /// One to three events with an implausible spike on one sensor.
    Spike,
    /// The 12 V system sags by up to 2.6 V × magnitude; DTC `P0562` in the last quarter.
    BatteryFailure,
    /// The card is used twice, minutes apart, the second time in a city hundreds of km away.
    GeoVelocity,
    /// Many small payments at one merchant within a few minutes.
    SmallPaymentBurst,
    /// One payment far above what the category usually costs.
    UnusualAmount,
    /// One payment at a merchant the car cannot use (fuel for an EV, charging for an ICE).
    UnusualMerchant,
    /// One payment in the night (01:00–04:30 CET), when the owner almost never pays.
    UnusualHour,
    /// A series of tiny amounts at different merchants within minutes.
    CardTesting,
}

impl AnomalyType {
    /// Every type, sensor faults first.
    pub const ALL: [AnomalyType; 11] = [
        AnomalyType::Overheating,
        AnomalyType::TyreLeak,
        AnomalyType::StuckSensor,
        AnomalyType::Spike,
        AnomalyType::BatteryFailure,
        AnomalyType::GeoVelocity,
        AnomalyType::SmallPaymentBurst,
        AnomalyType::UnusualAmount,
        AnomalyType::UnusualMerchant,
        AnomalyType::UnusualHour,
        AnomalyType::CardTesting,
    ];

    /// The name in labels and on the command line (`tyre_leak`, …).
    pub fn name(self) -> &'static str {
        match self {
            AnomalyType::Overheating => "overheating",
            AnomalyType::TyreLeak => "tyre_leak",
            AnomalyType::StuckSensor => "stuck_sensor",
            AnomalyType::Spike => "spike",
            AnomalyType::BatteryFailure => "battery_failure",
            AnomalyType::GeoVelocity => "geo_velocity",
            AnomalyType::SmallPaymentBurst => "small_payment_burst",
            AnomalyType::UnusualAmount => "unusual_amount",
            AnomalyType::UnusualMerchant => "unusual_merchant",
            AnomalyType::UnusualHour => "unusual_hour",
            AnomalyType::CardTesting => "card_testing",
        }
    }

    /// Sensor fault or fraud.
    pub fn kind(self) -> AnomalyKind {
        if (self as usize) < 5 {
            AnomalyKind::Sensor
        } else {
            AnomalyKind::Fraud
        }
    }

    /// Its position in [`AnomalyType::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for AnomalyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AnomalyType {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        AnomalyType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| SimError::UnknownName {
                what: "anomaly type",
                name: s.to_string(),
                known: AnomalyType::ALL.map(AnomalyType::name).join(", "),
            })
    }
}

/// What a simulation is: validated by [`Simulator::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The seed of every random choice.
    pub seed: u64,
    /// Cars in the fleet (1 – 1,000,000).
    pub cars: u32,
    /// Simulated time of the first tick, epoch ms (default `2026-01-01T00:00:00Z`).
    pub start_ms: i64,
    /// Simulated ms between ticks; every car emits one telemetry event per tick (1 ms – 1 h,
    /// default 1,000).
    pub interval_ms: u32,
    /// The telemetry record.
    pub schema: Schema,
    /// Mean background payments (entertainment, food, tolls, parking) per car per simulated
    /// hour, a Poisson process, fewer at night; fuel, charging and parking payments at the
    /// stops come on top. Default 36: at the default 1 s interval payments are ≈ 1 % of
    /// events. Lower it (e.g. 3) for a realistic fleet. 0 – 3,600.
    pub payments_per_hour: f64,
    /// Share of the fleet that is electric (0 – 1, default 0.2).
    pub ev_share: f64,
    /// Fraction of telemetry events inside sensor-fault episodes (0 – 0.5, default 0.01).
    pub sensor_anomaly_rate: f64,
    /// Fraction of payments that are fraudulent (0 – 0.5, default 0.02).
    pub fraud_rate: f64,
    /// How pronounced anomalies are (0.25 = subtle, 2.0 = blatant; default 1.0): drift sizes,
    /// spike heights, unusual amounts, burst lengths, the geo-velocity time gap.
    pub anomaly_magnitude: f64,
    /// The anomaly types injected (default: all). Rates are shared among the enabled types
    /// of each kind.
    pub anomalies: Vec<AnomalyType>,
}

/// `2026-01-01T00:00:00Z` in epoch ms: the default start, so data sets are reproducible.
pub const DEFAULT_START_MS: i64 = 1_767_225_600_000;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            cars: 1000,
            start_ms: DEFAULT_START_MS,
            interval_ms: 1000,
            schema: Schema::Fleetwatch,
            payments_per_hour: 36.0,
            ev_share: 0.2,
            sensor_anomaly_rate: 0.01,
            fraud_rate: 0.02,
            anomaly_magnitude: 1.0,
            anomalies: AnomalyType::ALL.to_vec(),
        }
    }
}

/// Why a simulation cannot start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A config field is out of range.
    #[error("{field} = {value}: {reason}")]
    InvalidConfig {
        /// The field (`cars`, `fraud_rate`, …).
        field: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        reason: &'static str,
    },
    /// A name that is not known.
    #[error("unknown {what} {name:?} (known: {known})")]
    UnknownName {
        /// What was named (`schema`, `anomaly type`).
        what: &'static str,
        /// The name given.
        name: String,
        /// The names known.
        known: String,
    },
}

/// One event of a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// Its stream.
    pub stream: Stream,
    /// Its key (the VIN; a label's `key`).
    pub key: &'a str,
    /// Its timestamp, epoch ms (a label's: its `end_ts`).
    pub ts_ms: i64,
    /// The JSON object.
    pub json: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    stream: Stream,
    key: (usize, usize),
    json: (usize, usize),
    ts_ms: i64,
}

/// Events of one or more ticks in one reusable byte buffer: no allocation per event once it
/// has grown to its working size. [`Simulator::tick`] appends; [`Batch::clear`] empties.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    buf: Vec<u8>,
    entries: Vec<Entry>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
    }

    /// Events in it.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of JSON and keys in it.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Event `i`.
    pub fn get(&self, i: usize) -> Option<Event<'_>> {
        let e = self.entries.get(i)?;
        Some(Event {
            stream: e.stream,
            key: std::str::from_utf8(&self.buf[e.key.0..e.key.1]).unwrap_or(""),
            ts_ms: e.ts_ms,
            json: &self.buf[e.json.0..e.json.1],
        })
    }

    /// Its events, in the order they were made.
    pub fn iter(&self) -> impl Iterator<Item = Event<'_>> + '_ {
        (0..self.entries.len()).filter_map(|i| self.get(i))
    }

    /// Starts an event keyed `key`: write its JSON into `buf` next, then [`Batch::commit`].
    #[inline]
    fn start(&mut self, key: &[u8]) -> (usize, usize) {
        let k = self.buf.len();
        self.buf.extend_from_slice(key);
        (k, self.buf.len())
    }

    #[inline]
    fn commit(&mut self, mark: (usize, usize), stream: Stream, ts_ms: i64) {
        self.entries.push(Entry {
            stream,
            key: (mark.0, mark.1),
            json: (mark.1, self.buf.len()),
            ts_ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in AnomalyType::ALL {
            assert_eq!(t.name().parse::<AnomalyType>(), Ok(t));
        }
        assert!("nope".parse::<AnomalyType>().is_err());
        assert_eq!("cardata-v1".parse::<Schema>(), Ok(Schema::CardataV1));
        assert_eq!(
            AnomalyType::ALL
                .iter()
                .filter(|t| t.kind() == AnomalyKind::Sensor)
                .count(),
            5
        );
    }

    #[test]
    fn the_cardata_schema_is_the_repository_s() {
        for f in [
            "\"time\"",
            "\"car\"",
            "\"tire_pressure_2_2\"",
            "\"control_unit_firmware\"",
        ] {
            assert!(CARDATA_V1_AVSC.contains(f), "{f}");
        }
    }
}
