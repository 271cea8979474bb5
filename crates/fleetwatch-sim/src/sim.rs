//! The simulator: cars, their payments, the anomaly episodes and the JSON they come out as.
//!
//! Every car has three random streams (physics, payments, anomalies), so that turning
//! anomalies on or off does not change where the cars drive or what their healthy sensors
//! read, and so that output never depends on batching.
//!
//! - **Payments**: background purchases are a Poisson process of
//!   [`SimConfig::payments_per_hour`] per car (entertainment 55 %, food 25 %, parking 10 %,
//!   tolls 10 %), thinned to 10 % between 00:00 and 05:00 CET; fuel / charging payments end
//!   every refuelling stop and half of the parking stops end in a parking payment.
//! - **Fraud**: each background purchase (after thinning) is, with probability
//!   `p = F / (k̄ (1 − F) + F)` (`F` the fraud rate, `k̄` the mean payments of an episode of the
//!   enabled types), replaced by a fraud episode, so that about `F` of all payments are
//!   fraudulent (a little less, as the stop payments are never replaced). While an episode
//!   is open (from its first to its last payment) the car makes no other payment.
//! - **Sensor faults**: a car not in a fault starts one at each tick with probability
//!   `s = R / (R + D̄ (1 − R))` (`R` the sensor anomaly rate, `D̄` the mean episode length in
//!   ticks), which makes the long-run fraction of telemetry inside faults `R`.

use crate::geo::{FAR_CITIES, distance_m};
use crate::identity;
use crate::json;
use crate::model::{ACCEL, Car, Physics, Readings, StopPayment, ambient_c, local_hour};
use crate::rng::Rng;
use crate::{AnomalyKind, AnomalyType, Batch, Schema, SimConfig, SimError, Stream};

/// Sensor-fault episode lengths: seconds (converted to ticks), except `spike` (events).
const SENSOR_SECONDS: [(u32, u32); 5] = [
    (300, 900),  // overheating
    (600, 1800), // tyre_leak
    (120, 600),  // stuck_sensor
    (1, 3),      // spike: events
    (300, 1200), // battery_failure
];

/// Counts of what a simulation produced so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Ticks run.
    pub ticks: u64,
    /// Telemetry events.
    pub telemetry: u64,
    /// Payment events.
    pub payments: u64,
    /// Label events.
    pub labels: u64,
    /// Bytes of JSON (keys not counted).
    pub bytes: u64,
    /// Labelled episodes per type, indexed like [`AnomalyType::ALL`].
    pub episodes: [u64; 11],
    /// Events inside labelled episodes per type, indexed like [`AnomalyType::ALL`].
    pub anomalous_events: [u64; 11],
}

impl Stats {
    /// All events.
    pub fn events(&self) -> u64 {
        self.telemetry + self.payments + self.labels
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Coolant,
    Engine,
    Oil,
    Battery,
    Tyre(usize),
    Speed,
    Rpm,
}

impl Target {
    fn read(self, r: &Readings) -> f64 {
        match self {
            Target::Coolant => r.coolant_c,
            Target::Engine => r.engine_c,
            Target::Oil => r.oil_kpa,
            Target::Battery => r.battery_v,
            Target::Tyre(i) => r.tyres[i],
            Target::Speed => r.speed_kmh,
            Target::Rpm => r.rpm,
        }
    }

    fn write(self, r: &mut Readings, v: f64) {
        match self {
            Target::Coolant => r.coolant_c = v,
            Target::Engine => r.engine_c = v,
            Target::Oil => r.oil_kpa = v,
            Target::Battery => r.battery_v = v,
            Target::Tyre(i) => r.tyres[i] = v,
            Target::Speed => r.speed_kmh = v,
            Target::Rpm => r.rpm = v,
        }
    }

    /// How far a spike throws it (× magnitude).
    fn spike(self) -> f64 {
        match self {
            Target::Coolant | Target::Engine => 60.0,
            Target::Oil => 500.0,
            Target::Battery => 9.0,
            Target::Tyre(_) => 150.0,
            Target::Speed => 150.0,
            Target::Rpm => 5000.0,
        }
    }
}

#[derive(Debug, Clone)]
struct SensorEp {
    ty: AnomalyType,
    n: u32,
    i: u32,
    start_ts: i64,
    first_seq: u64,
    target: Target,
    stuck: f64,
}

#[derive(Debug, Clone)]
struct FraudEp {
    ty: AnomalyType,
    total: u32,
    emitted: u32,
    next_ts: i64,
    start_ts: i64,
    last_ts: i64,
    first_seq: u64,
    far: usize,
    merchant: u32,
}

/// One car with its identity, streams and open episodes.
#[derive(Debug, Clone)]
struct Unit {
    phys: Rng,
    pay: Rng,
    anom: Rng,
    car: Car,
    vin: [u8; 17],
    account: String,
    card: [u8; 16],
    holder: String,
    fav: [u16; 6],
    tel_seq: u64,
    pay_seq: u64,
    next_pay_ms: i64,
    sensor: Option<SensorEp>,
    next_sensor_tick: u64,
    fraud: Option<FraudEp>,
}

#[derive(Debug, Clone)]
struct Params {
    phys: Physics,
    schema: Schema,
    mag: f64,
    interval_ms: i64,
    pay_mean_ms: f64,
    fraud_p: f64,
    fraud_types: Vec<AnomalyType>,
    sensor_types: Vec<AnomalyType>,
    sensor_p: f64,
    sensor_ticks: [(u32, u32); 5],
}

/// The simulator (see the crate doc). Deterministic in its [`SimConfig`].
#[derive(Debug, Clone)]
pub struct Simulator {
    cfg: SimConfig,
    p: Params,
    units: Vec<Unit>,
    tick: u64,
    now_ms: i64,
    stats: Stats,
}

fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> SimError {
    SimError::InvalidConfig {
        field,
        value: value.to_string(),
        reason,
    }
}

fn rate_ok(x: f64, max: f64) -> bool {
    x.is_finite() && (0.0..=max).contains(&x)
}

/// Payments of one fraud episode of this type: the value and its expectation.
fn fraud_count(ty: AnomalyType, mag: f64, rng: Option<&mut Rng>) -> (u32, f64) {
    let scaled = |lo: u32, hi: u32, rng: Option<&mut Rng>| {
        let f = |k: u32| ((f64::from(k) * mag).round() as u32).max(3);
        let mean = (lo..=hi).map(|k| f64::from(f(k))).sum::<f64>() / f64::from(hi - lo + 1);
        (rng.map_or(0, |r| f(r.int(lo, hi))), mean)
    };
    match ty {
        AnomalyType::GeoVelocity => (2, 2.0),
        AnomalyType::SmallPaymentBurst => scaled(5, 10, rng),
        AnomalyType::CardTesting => scaled(4, 8, rng),
        _ => (1, 1.0),
    }
}

impl Simulator {
    /// Validates `cfg` (an error names the field) and places the fleet at its start.
    pub fn new(cfg: SimConfig) -> Result<Simulator, SimError> {
        if !(1..=1_000_000).contains(&cfg.cars) {
            return Err(invalid("cars", cfg.cars, "must be 1 to 1,000,000"));
        }
        if !(1..=3_600_000).contains(&cfg.interval_ms) {
            return Err(invalid(
                "interval_ms",
                cfg.interval_ms,
                "must be 1 ms to 1 hour (3,600,000)",
            ));
        }
        if !(0..=253_402_300_799_000).contains(&cfg.start_ms) {
            return Err(invalid(
                "start_ms",
                cfg.start_ms,
                "must be between 1970 and 9999 (epoch ms)",
            ));
        }
        if !rate_ok(cfg.payments_per_hour, 3600.0) {
            return Err(invalid(
                "payments_per_hour",
                cfg.payments_per_hour,
                "must be 0 to 3600",
            ));
        }
        if !rate_ok(cfg.ev_share, 1.0) {
            return Err(invalid("ev_share", cfg.ev_share, "must be 0 to 1"));
        }
        if !rate_ok(cfg.sensor_anomaly_rate, 0.5) {
            return Err(invalid(
                "sensor_anomaly_rate",
                cfg.sensor_anomaly_rate,
                "must be 0 to 0.5",
            ));
        }
        if !rate_ok(cfg.fraud_rate, 0.5) {
            return Err(invalid("fraud_rate", cfg.fraud_rate, "must be 0 to 0.5"));
        }
        let mag = cfg.anomaly_magnitude;
        if !(mag.is_finite() && (0.25..=2.0).contains(&mag)) {
            return Err(invalid(
                "anomaly_magnitude",
                mag,
                "must be 0.25 (subtle) to 2.0 (blatant)",
            ));
        }
        let mut types = cfg.anomalies.clone();
        types.sort();
        types.dedup();
        let sensor_types: Vec<_> = types
            .iter()
            .copied()
            .filter(|t| t.kind() == AnomalyKind::Sensor)
            .collect();
        let fraud_types: Vec<_> = if cfg.schema == Schema::Fleetwatch {
            types
                .iter()
                .copied()
                .filter(|t| t.kind() == AnomalyKind::Fraud)
                .collect()
        } else {
            Vec::new()
        };
        let interval = f64::from(cfg.interval_ms);
        let mut sensor_ticks = [(1, 1); 5];
        for (i, &(lo, hi)) in SENSOR_SECONDS.iter().enumerate() {
            sensor_ticks[i] = if i == AnomalyType::Spike.index() {
                (lo, hi)
            } else {
                let t = |s: u32| ((f64::from(s) * 1000.0 / interval).round() as u32).max(1);
                (t(lo), t(hi))
            };
        }
        let d_mean = if sensor_types.is_empty() {
            0.0
        } else {
            sensor_types
                .iter()
                .map(|t| {
                    let (lo, hi) = sensor_ticks[t.index()];
                    (f64::from(lo) + f64::from(hi)) / 2.0
                })
                .sum::<f64>()
                / sensor_types.len() as f64
        };
        let r = cfg.sensor_anomaly_rate;
        let sensor_p = if sensor_types.is_empty() || r == 0.0 {
            0.0
        } else {
            r / (r + d_mean * (1.0 - r))
        };
        let f = cfg.fraud_rate;
        let fraud_p = if fraud_types.is_empty() || f == 0.0 {
            0.0
        } else {
            let k = fraud_types
                .iter()
                .map(|&t| fraud_count(t, mag, None).1)
                .sum::<f64>()
                / fraud_types.len() as f64;
            f / (k * (1.0 - f) + f)
        };
        let p = Params {
            phys: Physics::new(cfg.interval_ms),
            schema: cfg.schema,
            mag,
            interval_ms: i64::from(cfg.interval_ms),
            pay_mean_ms: if cfg.payments_per_hour > 0.0 && cfg.schema == Schema::Fleetwatch {
                3_600_000.0 / cfg.payments_per_hour
            } else {
                f64::INFINITY
            },
            fraud_p,
            fraud_types,
            sensor_types,
            sensor_p,
            sensor_ticks,
        };
        let units = (0..cfg.cars)
            .map(|i| Unit::new(&cfg, &p, i))
            .collect::<Vec<_>>();
        Ok(Simulator {
            now_ms: cfg.start_ms,
            cfg,
            p,
            units,
            tick: 0,
            stats: Stats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The simulated time (epoch ms) of the next tick.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// What was produced so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Runs one tick at [`Simulator::now_ms`] and appends its events to `batch`: for each
    /// car in order, its payments of the tick (ts in order, at most the tick's time), its
    /// telemetry event, and the labels of episodes that ended. Then the clock advances by
    /// one interval.
    pub fn tick(&mut self, batch: &mut Batch) {
        let t = self.now_ms;
        let ambient = ambient_c(t);
        let before = (batch.len(), batch.bytes());
        for u in &mut self.units {
            u.tick(&self.p, self.tick, t, ambient, batch, &mut self.stats);
        }
        self.account(batch, before);
        self.stats.ticks += 1;
        self.tick += 1;
        self.now_ms += self.p.interval_ms;
    }

    /// Ends the run: appends the labels of episodes still open, cut at their last event
    /// (episodes with no event yet are dropped). Call once, after the last tick.
    pub fn finish(&mut self, batch: &mut Batch) {
        let before = (batch.len(), batch.bytes());
        for u in &mut self.units {
            if let Some(ep) = u.sensor.take()
                && ep.i > 0
            {
                let end = ep.start_ts + i64::from(ep.i - 1) * self.p.interval_ms;
                u.label(
                    batch,
                    &mut self.stats,
                    ep.ty,
                    b't',
                    ep.first_seq,
                    ep.start_ts,
                    end,
                    ep.i,
                );
            }
            if let Some(ep) = u.fraud.take()
                && ep.emitted > 0
            {
                u.label(
                    batch,
                    &mut self.stats,
                    ep.ty,
                    b'p',
                    ep.first_seq,
                    ep.start_ts,
                    ep.last_ts,
                    ep.emitted,
                );
            }
        }
        self.account(batch, before);
    }

    fn account(&mut self, batch: &Batch, before: (usize, usize)) {
        self.stats.bytes += (batch.bytes() - before.1) as u64;
        // Keys are in the byte count; take them out again.
        self.stats.bytes -= 17 * (batch.len() - before.0) as u64;
    }
}

const CATEGORY_PREFIX: [&str; 6] = ["FUEL", "CHRG", "PARK", "ENT", "TOLL", "FOOD"];
const FUEL: usize = 0;
const CHARGING: usize = 1;
const PARKING: usize = 2;
const ENTERTAINMENT: usize = 3;
const TOLLS: usize = 4;
const FOOD: usize = 5;
const PRICE_POINTS: [f64; 7] = [0.99, 1.99, 2.99, 4.99, 7.99, 9.99, 14.99];
const NIGHT_START_MS: i64 = 3_600_000;
const NIGHT_END_MS: i64 = 16_200_000;

struct Pay<'a> {
    ts: i64,
    lat: f64,
    lon: f64,
    amount: f64,
    currency: &'a str,
    category: usize,
    merchant: u32,
}

impl Unit {
    fn new(cfg: &SimConfig, p: &Params, index: u32) -> Unit {
        let stream = u64::from(index) * 4;
        let mut phys = Rng::for_stream(cfg.seed, stream);
        let mut pay = Rng::for_stream(cfg.seed, stream + 1);
        let mut anom = Rng::for_stream(cfg.seed, stream + 2);
        let mut id = Rng::for_stream(cfg.seed, stream + 3);
        let car = Car::new(&mut phys, cfg.ev_share, cfg.start_ms);
        let mut fav = [0u16; 6];
        for f in &mut fav {
            *f = id.below(2000) as u16;
        }
        let next_pay_ms = if p.pay_mean_ms.is_finite() {
            cfg.start_ms + 1 + pay.exp(p.pay_mean_ms) as i64
        } else {
            i64::MAX
        };
        let next_sensor_tick = anom.geometric(p.sensor_p);
        Unit {
            vin: identity::vin(&mut id, index),
            account: identity::account_id(&mut id, index),
            card: identity::card_number(&mut id, index),
            holder: identity::holder(&mut id),
            fav,
            phys,
            pay,
            anom,
            car,
            tel_seq: 0,
            pay_seq: 0,
            next_pay_ms,
            sensor: None,
            next_sensor_tick,
            fraud: None,
        }
    }

    fn tick(
        &mut self,
        p: &Params,
        tick: u64,
        t: i64,
        ambient: f64,
        batch: &mut Batch,
        stats: &mut Stats,
    ) {
        let stop_pay = if tick > 0 {
            self.car.step(&mut self.phys, &p.phys, t, ambient)
        } else {
            StopPayment::None
        };
        if p.schema == Schema::Fleetwatch {
            self.payments(p, t, stop_pay, batch, stats);
        }
        let mut r = self.car.readings(&mut self.phys, ambient);
        let dtc = self.sensor_fault(p, tick, t, &mut r);
        match p.schema {
            Schema::Fleetwatch => self.write_telemetry(batch, t, &r, dtc),
            Schema::CardataV1 => self.write_cardata(batch, t, &r),
        }
        stats.telemetry += 1;
        self.tel_seq += 1;
        if let Some(ep) = &mut self.sensor {
            ep.i += 1;
            if ep.i >= ep.n {
                let ep = ep.clone();
                self.sensor = None;
                self.label(
                    batch,
                    stats,
                    ep.ty,
                    b't',
                    ep.first_seq,
                    ep.start_ts,
                    t,
                    ep.n,
                );
                self.next_sensor_tick = tick
                    .saturating_add(1)
                    .saturating_add(self.anom.geometric(p.sensor_p));
            }
        }
    }

    /// Starts, applies and advances this car's sensor fault; returns the DTC to report.
    fn sensor_fault(
        &mut self,
        p: &Params,
        tick: u64,
        t: i64,
        r: &mut Readings,
    ) -> Option<&'static str> {
        if self.sensor.is_none() && tick >= self.next_sensor_tick && !p.sensor_types.is_empty() {
            let rng = &mut self.anom;
            let ty = p.sensor_types[rng.below(p.sensor_types.len() as u32) as usize];
            let (lo, hi) = p.sensor_ticks[ty.index()];
            let tyre = Target::Tyre(rng.below(4) as usize);
            let cardata = p.schema == Schema::CardataV1;
            let target = match ty {
                AnomalyType::StuckSensor => {
                    let opts: &[Target] = if cardata {
                        &[Target::Coolant, Target::Battery, tyre, Target::Speed]
                    } else if self.car.ev {
                        &[
                            Target::Coolant,
                            Target::Engine,
                            Target::Battery,
                            tyre,
                            Target::Speed,
                        ]
                    } else {
                        &[
                            Target::Coolant,
                            Target::Engine,
                            Target::Oil,
                            Target::Battery,
                            tyre,
                            Target::Speed,
                        ]
                    };
                    opts[rng.below(opts.len() as u32) as usize]
                }
                AnomalyType::Spike => {
                    let opts: &[Target] = if cardata || self.car.ev {
                        &[
                            Target::Coolant,
                            Target::Rpm,
                            Target::Battery,
                            tyre,
                            Target::Speed,
                        ]
                    } else {
                        &[
                            Target::Coolant,
                            Target::Rpm,
                            Target::Battery,
                            Target::Oil,
                            tyre,
                        ]
                    };
                    opts[rng.below(opts.len() as u32) as usize]
                }
                _ => tyre,
            };
            self.sensor = Some(SensorEp {
                ty,
                n: rng.int(lo, hi),
                i: 0,
                start_ts: t,
                first_seq: self.tel_seq,
                target,
                stuck: 0.0,
            });
        }
        let ep = self.sensor.as_mut()?;
        let progress = if ep.n > 1 {
            f64::from(ep.i) / f64::from(ep.n - 1)
        } else {
            1.0
        };
        let mag = p.mag;
        match ep.ty {
            AnomalyType::Overheating => {
                let off = 30.0 * mag * progress;
                r.coolant_c += off;
                r.engine_c += off * 1.2;
                if progress >= 0.8 {
                    return Some(if self.car.ev { "P0A2F" } else { "P0217" });
                }
            }
            AnomalyType::TyreLeak => {
                if let Target::Tyre(i) = ep.target {
                    r.tyres[i] -= 60.0 * mag * progress;
                }
            }
            AnomalyType::StuckSensor => {
                if ep.i == 0 {
                    ep.stuck = ep.target.read(r);
                }
                ep.target.write(r, ep.stuck);
            }
            AnomalyType::Spike => {
                let v = ep.target.read(r) + ep.target.spike() * mag * self.anom.range(0.8, 1.2);
                ep.target.write(r, v);
            }
            AnomalyType::BatteryFailure => {
                r.battery_v -= 2.6 * mag * progress;
                if progress >= 0.75 {
                    return Some("P0562");
                }
            }
            _ => {}
        }
        None
    }

    /// This tick's payments, in ts order.
    fn payments(
        &mut self,
        p: &Params,
        t: i64,
        stop: StopPayment,
        batch: &mut Batch,
        stats: &mut Stats,
    ) {
        loop {
            let fraud_ts = self
                .fraud
                .as_ref()
                .map_or(i64::MAX, |f| f.next_ts)
                .min(i64::MAX - 1);
            let legit_ts = self.next_pay_ms;
            if fraud_ts <= t && fraud_ts <= legit_ts {
                self.fraud_payment(p, fraud_ts, batch, stats);
            } else if legit_ts <= t {
                self.next_pay_ms = legit_ts + 1 + self.pay.exp(p.pay_mean_ms) as i64;
                self.opportunity(p, legit_ts, batch, stats);
            } else {
                break;
            }
        }
        let blocked = self
            .fraud
            .as_ref()
            .is_some_and(|f| f.emitted > 0 || f.next_ts == t);
        if blocked {
            return;
        }
        let (lat, lon) = (self.car.lat, self.car.lon);
        match stop {
            StopPayment::None => {}
            StopPayment::Energy(amount) if amount > 0.01 => {
                let (category, price) = if self.car.ev {
                    (CHARGING, self.pay.range(0.39, 0.79))
                } else {
                    (FUEL, self.pay.range(1.65, 1.89))
                };
                let merchant = self.pay.below(2000);
                self.write_payment(
                    batch,
                    stats,
                    &Pay {
                        ts: t,
                        lat,
                        lon,
                        amount: (amount * price).max(1.0),
                        currency: "EUR",
                        category,
                        merchant,
                    },
                );
            }
            StopPayment::Energy(_) => {}
            StopPayment::Parking(hours) => {
                let amount = (hours * self.pay.range(1.5, 3.5)).max(1.0);
                let merchant = self.merchant(PARKING);
                self.write_payment(
                    batch,
                    stats,
                    &Pay {
                        ts: t,
                        lat,
                        lon,
                        amount,
                        currency: "EUR",
                        category: PARKING,
                        merchant,
                    },
                );
            }
        }
    }

    fn merchant(&mut self, category: usize) -> u32 {
        if self.pay.chance(0.7) {
            u32::from(self.fav[category])
        } else {
            self.pay.below(2000)
        }
    }

    fn typical_amount(rng: &mut Rng, category: usize) -> f64 {
        match category {
            ENTERTAINMENT => PRICE_POINTS[rng.below(PRICE_POINTS.len() as u32) as usize],
            FOOD => rng.range(4.5, 28.0),
            PARKING => rng.range(1.5, 12.0),
            TOLLS => rng.range(3.0, 18.0),
            FUEL => rng.range(40.0, 95.0),
            _ => rng.range(12.0, 45.0),
        }
    }

    /// A background purchase at `ts`: skipped, a legitimate payment, or a fraud episode.
    fn opportunity(&mut self, p: &Params, ts: i64, batch: &mut Batch, stats: &mut Stats) {
        if let Some(f) = &self.fraud
            && (f.emitted > 0 || f.next_ts == ts)
        {
            return;
        }
        if local_hour(ts) < 5 && !self.pay.chance(0.1) {
            return;
        }
        if self.fraud.is_none() && p.fraud_p > 0.0 && self.anom.chance(p.fraud_p) {
            self.start_fraud(p, ts);
            return;
        }
        let u = self.pay.f64();
        let category = if u < 0.55 {
            ENTERTAINMENT
        } else if u < 0.80 {
            FOOD
        } else if u < 0.90 {
            PARKING
        } else {
            TOLLS
        };
        let mut amount = Self::typical_amount(&mut self.pay, category);
        let mut currency = "EUR";
        if self.pay.chance(0.03) {
            let (c, rate) = [("CHF", 0.95), ("GBP", 0.85), ("USD", 1.08), ("CZK", 25.0)]
                [self.pay.below(4) as usize];
            currency = c;
            amount *= rate;
        }
        let merchant = self.merchant(category);
        let (lat, lon) = (self.car.lat, self.car.lon);
        self.write_payment(
            batch,
            stats,
            &Pay {
                ts,
                lat,
                lon,
                amount,
                currency,
                category,
                merchant,
            },
        );
    }

    fn start_fraud(&mut self, p: &Params, ts: i64) {
        let rng = &mut self.anom;
        let ty = p.fraud_types[rng.below(p.fraud_types.len() as u32) as usize];
        let (total, _) = fraud_count(ty, p.mag, Some(rng));
        let next_ts = if ty == AnomalyType::UnusualHour {
            let day = 86_400_000;
            let tod = (ts + 3_600_000).rem_euclid(day);
            if (NIGHT_START_MS..NIGHT_END_MS).contains(&tod) {
                ts
            } else {
                let to_night = (NIGHT_START_MS - tod).rem_euclid(day);
                ts + to_night + rng.range(0.0, (NIGHT_END_MS - NIGHT_START_MS) as f64) as i64
            }
        } else {
            ts
        };
        // A far city at least 300 km from here (else the farthest of those tried).
        let (lat, lon) = (self.car.lat, self.car.lon);
        let mut far = rng.below(FAR_CITIES.len() as u32) as usize;
        for _ in 0..8 {
            let c = &FAR_CITIES[far].0;
            if distance_m(lat, lon, c.lat, c.lon) >= 300_000.0 {
                break;
            }
            far = rng.below(FAR_CITIES.len() as u32) as usize;
        }
        let merchant = rng.below(2000);
        self.fraud = Some(FraudEp {
            ty,
            total,
            emitted: 0,
            next_ts,
            start_ts: next_ts,
            last_ts: next_ts,
            first_seq: 0,
            far,
            merchant,
        });
    }

    fn fraud_payment(&mut self, p: &Params, ts: i64, batch: &mut Batch, stats: &mut Stats) {
        let Some(mut ep) = self.fraud.take() else {
            return;
        };
        let rng = &mut self.anom;
        let mag = p.mag;
        let (mut lat, mut lon) = (self.car.lat, self.car.lon);
        let mut currency = "EUR";
        let (category, amount, merchant, gap_s) = match ep.ty {
            AnomalyType::GeoVelocity => {
                let category = if rng.chance(0.5) { FOOD } else { ENTERTAINMENT };
                let mut amount = Self::typical_amount(rng, category);
                if ep.emitted == 1 {
                    let (c, cur) = &FAR_CITIES[ep.far];
                    lat = c.lat + rng.range(-0.03, 0.03);
                    lon = c.lon + rng.range(-0.04, 0.04);
                    currency = cur;
                    if *cur == "CZK" {
                        amount *= 25.0;
                    }
                }
                let gap = (rng.range(120.0, 600.0) / mag).clamp(60.0, 2400.0);
                (category, amount, rng.below(2000), gap)
            }
            AnomalyType::SmallPaymentBurst => (
                ENTERTAINMENT,
                [0.99, 1.49, 1.99, 2.99][rng.below(4) as usize],
                ep.merchant,
                rng.range(10.0, 60.0),
            ),
            AnomalyType::UnusualAmount => {
                let category = [ENTERTAINMENT, FOOD, PARKING][rng.below(3) as usize];
                let base = Self::typical_amount(rng, category);
                let amount = base * (1.0 + 20.0 * mag * rng.range(0.5, 1.5));
                (category, amount, u32::from(self.fav[category]), 0.0)
            }
            AnomalyType::UnusualMerchant => {
                let category = if self.car.ev { FUEL } else { CHARGING };
                let amount = Self::typical_amount(rng, category) * (0.5 + mag / 2.0);
                (category, amount, rng.below(2000), 0.0)
            }
            AnomalyType::UnusualHour => {
                let category = if rng.chance(0.5) { FOOD } else { ENTERTAINMENT };
                (
                    category,
                    Self::typical_amount(rng, category),
                    rng.below(2000),
                    0.0,
                )
            }
            _ => {
                // card_testing
                let category = [ENTERTAINMENT, FOOD, PARKING][rng.below(3) as usize];
                let amount = (f64::from(rng.int(1, 100)) / 100.0).max(0.01);
                (category, amount, rng.below(2000), rng.range(5.0, 40.0))
            }
        };
        if ep.emitted == 0 {
            ep.first_seq = self.pay_seq;
            ep.start_ts = ts;
        }
        ep.last_ts = ts;
        ep.emitted += 1;
        self.write_payment(
            batch,
            stats,
            &Pay {
                ts,
                lat,
                lon,
                amount,
                currency,
                category,
                merchant,
            },
        );
        if ep.emitted >= ep.total {
            self.label(
                batch,
                stats,
                ep.ty,
                b'p',
                ep.first_seq,
                ep.start_ts,
                ep.last_ts,
                ep.emitted,
            );
        } else {
            ep.next_ts = ts + ((gap_s * 1000.0) as i64).max(1000);
            self.fraud = Some(ep);
        }
    }

    fn event_id(&self, buf: &mut Vec<u8>, stream: u8, seq: u64) {
        buf.push(b'"');
        buf.extend_from_slice(&self.vin);
        buf.push(b'-');
        buf.push(stream);
        buf.push(b'-');
        let mut b = itoa::Buffer::new();
        buf.extend_from_slice(b.format(seq).as_bytes());
        buf.push(b'"');
    }

    fn write_payment(&mut self, batch: &mut Batch, stats: &mut Stats, pay: &Pay<'_>) {
        let mark = batch.start(&self.vin);
        let b = &mut batch.buf;
        b.extend_from_slice(b"{\"event_id\":");
        self.event_id(b, b'p', self.pay_seq);
        b.extend_from_slice(b",\"ts\":");
        json::int(b, pay.ts);
        b.extend_from_slice(b",\"vin\":\"");
        b.extend_from_slice(&self.vin);
        b.extend_from_slice(b"\",\"account_id\":");
        json::string(b, self.account.as_bytes());
        b.extend_from_slice(b",\"card_number\":\"");
        b.extend_from_slice(&self.card);
        b.extend_from_slice(b"\",\"card_holder\":");
        json::string(b, self.holder.as_bytes());
        b.extend_from_slice(b",\"amount\":");
        json::fixed(b, pay.amount.max(0.01), 2);
        b.extend_from_slice(b",\"currency\":\"");
        b.extend_from_slice(pay.currency.as_bytes());
        b.extend_from_slice(b"\",\"merchant_category\":\"");
        b.extend_from_slice(crate::MERCHANT_CATEGORIES[pay.category].as_bytes());
        b.extend_from_slice(b"\",\"merchant_id\":\"");
        b.extend_from_slice(CATEGORY_PREFIX[pay.category].as_bytes());
        b.push(b'-');
        let m = pay.merchant % 100_000;
        for d in [10_000, 1000, 100, 10, 1] {
            b.push(b'0' + (m / d % 10) as u8);
        }
        b.extend_from_slice(b"\",\"lat\":");
        json::fixed(b, pay.lat, 6);
        b.extend_from_slice(b",\"lon\":");
        json::fixed(b, pay.lon, 6);
        b.push(b'}');
        batch.commit(mark, Stream::Payment, pay.ts);
        stats.payments += 1;
        self.pay_seq += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn label(
        &self,
        batch: &mut Batch,
        stats: &mut Stats,
        ty: AnomalyType,
        stream: u8,
        first_seq: u64,
        start_ts: i64,
        end_ts: i64,
        events: u32,
    ) {
        let mark = batch.start(&self.vin);
        let b = &mut batch.buf;
        b.extend_from_slice(b"{\"event_id\":");
        self.event_id(b, stream, first_seq);
        b.extend_from_slice(b",\"key\":\"");
        b.extend_from_slice(&self.vin);
        b.extend_from_slice(b"\",\"type\":\"");
        b.extend_from_slice(ty.name().as_bytes());
        b.extend_from_slice(b"\",\"kind\":\"");
        b.extend_from_slice(ty.kind().name().as_bytes());
        b.extend_from_slice(b"\",\"start_ts\":");
        json::int(b, start_ts);
        b.extend_from_slice(b",\"end_ts\":");
        json::int(b, end_ts);
        b.extend_from_slice(b",\"events\":");
        json::int(b, i64::from(events));
        b.push(b'}');
        batch.commit(mark, Stream::Label, end_ts);
        stats.labels += 1;
        stats.episodes[ty.index()] += 1;
        stats.anomalous_events[ty.index()] += u64::from(events);
    }

    fn write_telemetry(&self, batch: &mut Batch, t: i64, r: &Readings, dtc: Option<&str>) {
        let mark = batch.start(&self.vin);
        let b = &mut batch.buf;
        b.extend_from_slice(b"{\"event_id\":");
        self.event_id(b, b't', self.tel_seq);
        b.extend_from_slice(b",\"vin\":\"");
        b.extend_from_slice(&self.vin);
        b.extend_from_slice(b"\",\"ts\":");
        json::int(b, t);
        b.extend_from_slice(if self.car.ev {
            b",\"powertrain\":\"ev\",\"lat\":"
        } else {
            b",\"powertrain\":\"ice\",\"lat\":"
        });
        json::fixed(b, r.lat, 6);
        b.extend_from_slice(b",\"lon\":");
        json::fixed(b, r.lon, 6);
        b.extend_from_slice(b",\"speed_kmh\":");
        json::fixed(b, r.speed_kmh.max(0.0), 1);
        b.extend_from_slice(b",\"rpm\":");
        json::int(b, r.rpm.max(0.0).round() as i64);
        b.extend_from_slice(b",\"gear\":");
        json::int(b, i64::from(r.gear));
        b.extend_from_slice(b",\"engine_temp_c\":");
        json::fixed(b, r.engine_c, 1);
        b.extend_from_slice(b",\"coolant_temp_c\":");
        json::fixed(b, r.coolant_c, 1);
        b.extend_from_slice(b",\"oil_pressure_kpa\":");
        json::fixed(b, r.oil_kpa.max(0.0), 1);
        b.extend_from_slice(b",\"battery_v\":");
        json::fixed(b, r.battery_v.max(0.0), 2);
        for (name, v) in [
            &b",\"tyre_fl_kpa\":"[..],
            b",\"tyre_fr_kpa\":",
            b",\"tyre_rl_kpa\":",
            b",\"tyre_rr_kpa\":",
        ]
        .into_iter()
        .zip(r.tyres)
        {
            b.extend_from_slice(name);
            json::fixed(b, v.max(0.0), 1);
        }
        b.extend_from_slice(b",\"energy_level_pct\":");
        json::fixed(b, r.energy_pct, 2);
        b.extend_from_slice(b",\"odometer_km\":");
        json::fixed(b, r.odometer_km, 3);
        match dtc {
            None => b.extend_from_slice(b",\"dtc\":[]}"),
            Some(code) => {
                b.extend_from_slice(b",\"dtc\":[\"");
                b.extend_from_slice(code.as_bytes());
                b.extend_from_slice(b"\"]}");
            }
        }
        batch.commit(mark, Stream::Telemetry, t);
    }

    fn write_cardata(&mut self, batch: &mut Batch, t: i64, r: &Readings) {
        let car = &self.car;
        let rng = &mut self.phys;
        let on = r.on;
        let intake_air_temp = if on {
            r.ambient + 8.0 + 15.0 * r.load
        } else {
            r.ambient + (r.coolant_c - r.ambient) * 0.2
        } + 0.2 * rng.noise();
        let air_flow = match (on, car.ev) {
            (false, _) => 0.0,
            (true, false) => r.rpm / 1000.0 * (3.0 + 12.0 * r.load),
            (true, true) => 2.0 + 10.0 * r.load,
        };
        let battery_pct = if car.ev {
            r.energy_pct
        } else {
            (car.soc12 - (12.6 - r.battery_v).max(0.0) * 60.0).clamp(0.0, 100.0)
        };
        let current = match (on, car.ev) {
            (false, false) => 0.5,
            (false, true) => 0.3,
            (true, false) => 15.0 + 25.0 * r.load + 0.5 * rng.noise(),
            (true, true) => 5.0 + 250.0 * r.load + 2.0 * rng.noise(),
        };
        let vibration = match (on, car.ev) {
            (false, _) => 0.0,
            (true, false) => r.rpm / 1000.0 * (0.6 + 0.4 * r.load) + 0.05 * rng.noise().abs(),
            (true, true) => r.rpm / 10_000.0 * 0.3 + 0.02 * rng.noise().abs(),
        };
        let v = r.speed_kmh / 3.6;
        let throttle = if on && r.accel >= -0.2 {
            (0.1 + 0.6 * r.accel.max(0.0) / ACCEL + 0.3 * (v / 40.0) * (v / 40.0)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut acc = [0.0; 4];
        for a in &mut acc {
            *a = if on && v > 0.0 {
                r.accel / 9.81 + rng.noise() * (0.01 + 0.004 * v)
            } else {
                rng.noise() * 0.002
            };
        }
        let mark = batch.start(&self.vin);
        let b = &mut batch.buf;
        b.extend_from_slice(b"{\"time\":");
        json::int(b, t.div_euclid(1000));
        b.extend_from_slice(b",\"car\":\"");
        b.extend_from_slice(&self.vin);
        b.extend_from_slice(b"\",\"coolant_temp\":");
        json::fixed(b, r.coolant_c, 2);
        b.extend_from_slice(b",\"intake_air_temp\":");
        json::fixed(b, intake_air_temp, 2);
        b.extend_from_slice(b",\"intake_air_flow_speed\":");
        json::fixed(b, air_flow.max(0.0), 2);
        b.extend_from_slice(b",\"battery_percentage\":");
        json::fixed(b, battery_pct, 2);
        b.extend_from_slice(b",\"battery_voltage\":");
        json::fixed(b, r.battery_v.max(0.0), 2);
        b.extend_from_slice(b",\"current_draw\":");
        json::fixed(b, current.max(0.0), 2);
        b.extend_from_slice(b",\"speed\":");
        json::fixed(b, r.speed_kmh.max(0.0), 2);
        b.extend_from_slice(b",\"engine_vibration_amplitude\":");
        json::fixed(b, vibration.max(0.0), 2);
        b.extend_from_slice(b",\"throttle_pos\":");
        json::fixed(b, throttle, 2);
        for (name, kpa) in [
            &b",\"tire_pressure_1_1\":"[..],
            b",\"tire_pressure_1_2\":",
            b",\"tire_pressure_2_1\":",
            b",\"tire_pressure_2_2\":",
        ]
        .into_iter()
        .zip(r.tyres)
        {
            b.extend_from_slice(name);
            json::int(b, (kpa.max(0.0) * 0.145_037_7).round() as i64);
        }
        for (name, a) in [
            &b",\"accelerometer_1_1_value\":"[..],
            b",\"accelerometer_1_2_value\":",
            b",\"accelerometer_2_1_value\":",
            b",\"accelerometer_2_2_value\":",
        ]
        .into_iter()
        .zip(acc)
        {
            b.extend_from_slice(name);
            json::fixed(b, a, 3);
        }
        b.extend_from_slice(b",\"control_unit_firmware\":");
        json::int(b, i64::from(car.firmware));
        b.push(b'}');
        batch.commit(mark, Stream::Telemetry, t);
    }
}
