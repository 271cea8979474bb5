//! The physical model of one car: where it is going, how fast, and what its sensors read.
//!
//! - Trips go between the region's cities ([`CITIES`](crate::geo)): an urban exit (50–60
//!   km/h, traffic lights every ≈ 1.2 km, 10–60 s red), two highway legs (100–130 km/h) via a
//!   point off the straight line, an urban entry; then the car parks 5–90 minutes with the
//!   engine off. Below 12 % energy it stops to refuel (ICE, ≈ 2 min) or charge (EV, ≈ 25 min
//!   at 50–150 kW), which ends in a fuel or charging payment.
//! - Speed follows the limit times the driver's style (0.92–1.12) with acceleration ≤
//!   [`ACCEL`] and braking ≤ [`BRAKE`] (planned so as to stop at the stop line); position
//!   moves by the distance (trapezoid of the speeds) along the leg's heading; the odometer
//!   integrates the same distance.
//! - ICE: the gear follows speed ([`GEAR_UP_KMH`]), rpm = wheel rpm × [`GEAR_RATIOS`] ×
//!   [`FINAL_DRIVE`], at least the idle speed (760–840 rpm); EV: one gear, motor rpm = wheel rpm
//!   × [`EV_RATIO`], 0 when stopped.
//! - Temperatures approach a target first-order (coolant τ 4 min warming, 30 min cooling;
//!   operating ≈ 88–94 °C ICE, ≈ 25–35 °C EV battery loop) from the ambient temperature
//!   ([`ambient_c`]); oil pressure follows rpm; the 12 V system reads ≈ 14.1 V running and
//!   ≈ 12.5 V parked; tyres ≈ 230–250 kPa cold, +7 % when warm from driving.

use crate::geo::{CITIES, LEGS, Route, near};
use crate::rng::Rng;

/// Maximum acceleration, m/s².
pub const ACCEL: f64 = 2.5;
/// Normal braking, m/s².
pub const BRAKE: f64 = 2.5;
/// ICE gear ratios, 1st to 6th.
pub const GEAR_RATIOS: [f64; 6] = [3.6, 2.1, 1.45, 1.12, 0.92, 0.78];
/// The speeds (km/h) at which an ICE shifts up into 2nd … 6th.
pub const GEAR_UP_KMH: [f64; 5] = [20.0, 35.0, 50.0, 65.0, 85.0];
/// Final drive ratio of an ICE.
pub const FINAL_DRIVE: f64 = 3.42;
/// An EV's single reduction ratio.
pub const EV_RATIO: f64 = 9.7;
/// Tyre rolling circumference, metres.
pub const WHEEL_CIRCUMFERENCE_M: f64 = 2.0;
/// Lowest and highest idle speed of an ICE, rpm.
pub const IDLE_RPM: (f64, f64) = (760.0, 840.0);

/// The ICE gear at this speed (1 – 6; the caller uses 0 when stopped).
pub fn ice_gear(speed_kmh: f64) -> u32 {
    1 + GEAR_UP_KMH.iter().filter(|&&g| speed_kmh >= g).count() as u32
}

/// Engine rpm of an ICE at this speed in this gear (before idle is applied).
pub fn ice_rpm(speed_kmh: f64, gear: u32) -> f64 {
    let i = (gear.clamp(1, 6) - 1) as usize;
    speed_kmh / 3.6 / WHEEL_CIRCUMFERENCE_M * 60.0 * GEAR_RATIOS[i] * FINAL_DRIVE
}

/// Motor rpm of an EV at this speed.
pub fn ev_rpm(speed_kmh: f64) -> f64 {
    speed_kmh / 3.6 / WHEEL_CIRCUMFERENCE_M * 60.0 * EV_RATIO
}

/// The ambient temperature (°C) at `ts_ms`: 4 °C at 05:00 CET rising linearly to 16 °C at
/// 15:00 and back (no transcendental function, so the same everywhere).
pub fn ambient_c(ts_ms: i64) -> f64 {
    let day_ms = 86_400_000i64;
    let h = (ts_ms + 3_600_000).rem_euclid(day_ms) as f64 / 3_600_000.0;
    let x = if (5.0..15.0).contains(&h) {
        (h - 5.0) / 10.0
    } else {
        let since = if h >= 15.0 { h - 15.0 } else { h + 9.0 };
        1.0 - since / 14.0
    };
    4.0 + 12.0 * x
}

/// The CET hour (0 – 23) of `ts_ms`.
pub fn local_hour(ts_ms: i64) -> u32 {
    ((ts_ms + 3_600_000).rem_euclid(86_400_000) / 3_600_000) as u32
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    Parked { until: i64 },
    Driving,
    Waiting { until: i64 },
    Refuelling { until: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum StopKind {
    None,
    Light,
    Refuel,
    Destination,
}

/// Precomputed per-tick constants.
#[derive(Debug, Clone)]
pub(crate) struct Physics {
    pub dt: f64,
    a_cool_on: f64,
    a_cool_off: f64,
    a_eng_on: f64,
    a_eng_off: f64,
    a_tyre: f64,
}

impl Physics {
    pub fn new(interval_ms: u32) -> Physics {
        let dt = f64::from(interval_ms) / 1000.0;
        let a = |tau: f64| 1.0 - crate::rng::exp(-dt / tau);
        Physics {
            dt,
            a_cool_on: a(240.0),
            a_cool_off: a(1800.0),
            a_eng_on: a(300.0),
            a_eng_off: a(1500.0),
            a_tyre: a(900.0),
        }
    }
}

/// What a payment at a stop is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StopPayment {
    None,
    /// Litres (ICE) or kWh (EV) bought.
    Energy(f64),
    /// Hours parked.
    Parking(f64),
}

/// The sensor values of one tick, before formatting (anomalies distort these).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Readings {
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: f64,
    pub rpm: f64,
    pub gear: u32,
    pub engine_c: f64,
    pub coolant_c: f64,
    pub oil_kpa: f64,
    pub battery_v: f64,
    pub tyres: [f64; 4],
    pub energy_pct: f64,
    pub odometer_km: f64,
    pub load: f64,
    pub accel: f64,
    pub ambient: f64,
    pub on: bool,
}

/// One car's physical state.
#[derive(Debug, Clone)]
pub(crate) struct Car {
    pub ev: bool,
    pub mode: Mode,
    city: usize,
    route: Route,
    leg: usize,
    pos: f64,
    pub lat: f64,
    pub lon: f64,
    /// Speed, m/s.
    pub v: f64,
    accel: f64,
    style: f64,
    next_stop: f64,
    stop: StopKind,
    low_energy: bool,
    pub odometer_km: f64,
    energy: f64,
    capacity: f64,
    per_100km: f64,
    refuel_target: f64,
    refuel_rate: f64,
    refuel_amount: f64,
    park_started: i64,
    coolant: f64,
    engine: f64,
    tyre_warm: f64,
    tyre_cold: [f64; 4],
    battery_offset: f64,
    pub idle_rpm: f64,
    pub firmware: u32,
    pub soc12: f64,
}

impl Car {
    /// A car at a random city, parked (60 %) or about to leave.
    pub fn new(rng: &mut Rng, ev_share: f64, start_ms: i64) -> Car {
        let ev = rng.chance(ev_share);
        let city = rng.below(CITIES.len() as u32) as usize;
        let (lat, lon) = near(rng, &CITIES[city]);
        let capacity = if ev {
            rng.range(50.0, 90.0)
        } else {
            rng.range(40.0, 70.0)
        };
        let ambient = ambient_c(start_ms);
        let parked = rng.chance(0.6);
        let warm = if parked {
            ambient + rng.range(0.0, 30.0)
        } else {
            ambient
        };
        let mut car = Car {
            ev,
            mode: Mode::Parked {
                until: start_ms + rng.exp(900_000.0) as i64,
            },
            city,
            route: Route::default(),
            leg: 0,
            pos: 0.0,
            lat,
            lon,
            v: 0.0,
            accel: 0.0,
            style: rng.range(0.92, 1.12),
            next_stop: f64::INFINITY,
            stop: StopKind::None,
            low_energy: false,
            odometer_km: rng.range(2_000.0, 150_000.0),
            energy: capacity * rng.range(0.25, 0.95),
            capacity,
            per_100km: if ev {
                rng.range(15.0, 21.0)
            } else {
                rng.range(5.5, 8.0)
            },
            refuel_target: 0.0,
            refuel_rate: 0.0,
            refuel_amount: 0.0,
            park_started: start_ms,
            coolant: warm,
            engine: warm,
            tyre_warm: 0.0,
            tyre_cold: [0.0; 4],
            battery_offset: rng.range(-0.15, 0.15),
            idle_rpm: rng.range(IDLE_RPM.0, IDLE_RPM.1),
            firmware: [2000, 2100, 2200, 2210, 3000][rng.below(5) as usize],
            soc12: rng.range(70.0, 95.0),
        };
        let base = rng.range(230.0, 245.0);
        for t in &mut car.tyre_cold {
            *t = base + rng.range(-3.0, 3.0);
        }
        if !parked {
            car.start_trip(rng);
        }
        car
    }

    pub fn engine_on(&self) -> bool {
        matches!(self.mode, Mode::Driving | Mode::Waiting { .. })
    }

    pub fn energy_pct(&self) -> f64 {
        self.energy / self.capacity * 100.0
    }

    fn start_trip(&mut self, rng: &mut Rng) {
        let mut to = rng.below(CITIES.len() as u32 - 1) as usize;
        if to >= self.city {
            to += 1;
        }
        self.route = Route::plan(rng, (self.lat, self.lon), &CITIES[to]);
        self.city = to;
        self.leg = 0;
        self.pos = 0.0;
        self.style = rng.range(0.92, 1.12);
        self.mode = Mode::Driving;
        self.plan_stop(rng);
    }

    /// The next stop on the current leg: a traffic light (urban), the destination (last leg).
    fn plan_stop(&mut self, rng: &mut Rng) {
        let leg = &self.route.legs[self.leg];
        self.next_stop = f64::INFINITY;
        self.stop = StopKind::None;
        if leg.urban {
            let at = self.pos + 30.0 + rng.exp(1200.0);
            if at < leg.len_m - 30.0 {
                self.next_stop = at;
                self.stop = StopKind::Light;
            }
        }
        if self.stop == StopKind::None && self.leg == LEGS - 1 {
            self.next_stop = leg.len_m;
            self.stop = StopKind::Destination;
        }
    }

    /// Advances the car by one tick ending at `t`; returns a payment the stop it left calls
    /// for (fuel, charging, parking).
    pub fn step(&mut self, rng: &mut Rng, p: &Physics, t: i64, ambient: f64) -> StopPayment {
        let dt = p.dt;
        let mut pay = StopPayment::None;
        let mut moved = 0.0;
        let v0 = self.v;
        match self.mode {
            Mode::Parked { until } => {
                self.v = 0.0;
                if t >= until {
                    let hours = (t - self.park_started) as f64 / 3.6e6;
                    if rng.chance(0.5) {
                        pay = StopPayment::Parking(hours);
                    }
                    self.start_trip(rng);
                }
            }
            Mode::Waiting { until } => {
                self.v = 0.0;
                if t >= until {
                    self.mode = Mode::Driving;
                    self.plan_stop(rng);
                }
            }
            Mode::Refuelling { until } => {
                self.v = 0.0;
                self.energy = (self.energy + self.refuel_rate * dt).min(self.refuel_target);
                if t >= until {
                    self.energy = self.refuel_target;
                    self.low_energy = false;
                    pay = StopPayment::Energy(self.refuel_amount);
                    self.mode = Mode::Driving;
                    self.plan_stop(rng);
                }
            }
            Mode::Driving => moved = self.drive(rng, dt, t),
        }
        self.accel = (self.v - v0) / dt;
        self.odometer_km += moved / 1000.0;
        let on = self.engine_on();
        // Energy: distance-dependent plus idle / auxiliary use.
        let speed_factor = {
            let r = self.v / 33.0;
            if self.ev {
                0.7 + 0.6 * r * r
            } else {
                0.8 + 0.5 * r * r
            }
        };
        let mut used = moved * self.per_100km / 100_000.0 * speed_factor;
        if on {
            // ICE idling ≈ 0.8 L/h; EV auxiliaries ≈ 0.8 kW.
            used += 0.8 * dt / 3600.0;
        }
        self.energy = (self.energy - used).max(0.0);
        if !self.low_energy && self.energy_pct() < 12.0 && self.mode == Mode::Driving {
            self.low_energy = true;
        }
        // Thermal model.
        let load = self.load();
        let (cool_t, eng_t) = if !on {
            (ambient, ambient)
        } else if self.ev {
            let c = 24.0 + 10.0 * load + 0.2 * (ambient - 10.0);
            (c, 35.0 + 45.0 * load)
        } else {
            let c = 88.0 + 6.0 * load;
            (c, c + 6.0 + 18.0 * load)
        };
        let (ac, ae) = if on {
            (p.a_cool_on, p.a_eng_on)
        } else {
            (p.a_cool_off, p.a_eng_off)
        };
        self.coolant += (cool_t - self.coolant) * ac;
        self.engine += (eng_t - self.engine) * ae;
        let tyre_t = (self.v / 30.0).min(1.0);
        self.tyre_warm += (tyre_t - self.tyre_warm) * p.a_tyre;
        pay
    }

    fn load(&self) -> f64 {
        if !self.engine_on() {
            return 0.0;
        }
        let r = self.v / 40.0;
        (0.12 + 0.5 * (self.accel.max(0.0) / ACCEL) + 0.35 * r * r).min(1.0)
    }

    /// One tick of driving: returns the metres covered.
    fn drive(&mut self, rng: &mut Rng, dt: f64, t: i64) -> f64 {
        let v0 = self.v;
        if self.low_energy && self.stop != StopKind::Refuel {
            let at = self.pos + v0 * v0 / (2.0 * BRAKE) + 200.0;
            if at < self.next_stop && at < self.route.legs[self.leg].len_m {
                self.next_stop = at;
                self.stop = StopKind::Refuel;
            }
        }
        let rem = self.next_stop - self.pos;
        let mut moved;
        if self.stop != StopKind::None && rem <= v0 * v0 / (2.0 * BRAKE) + v0 * dt + 0.5 {
            // Brake so as to stop at the line.
            let rem = rem.max(0.0);
            let a = if rem > 0.01 {
                (v0 * v0 / (2.0 * rem)).clamp(0.5, 2.0 * BRAKE)
            } else {
                2.0 * BRAKE
            };
            let v1 = (v0 - a * dt).max(0.0);
            moved = (v0 + v1) / 2.0 * dt;
            if v1 < 0.5 || moved >= rem {
                moved = rem;
                self.pos = self.next_stop;
                self.v = 0.0;
                self.arrive(rng, t);
            } else {
                self.pos += moved;
                self.v = v1;
            }
        } else {
            let limit = self.route.legs[self.leg].limit_kmh / 3.6;
            let target = (limit * self.style + rng.noise() * 0.3).max(0.0);
            let v1 = v0 + (target - v0).clamp(-BRAKE * dt, ACCEL * dt);
            moved = (v0 + v1) / 2.0 * dt;
            self.pos += moved;
            self.v = v1;
            while self.pos >= self.route.legs[self.leg].len_m {
                if self.leg == LEGS - 1 {
                    // Only reachable through numerical edge cases: stop at the end.
                    moved -= self.pos - self.route.legs[self.leg].len_m;
                    self.pos = self.route.legs[self.leg].len_m;
                    self.v = 0.0;
                    self.arrive(rng, t);
                    break;
                }
                self.pos -= self.route.legs[self.leg].len_m;
                self.leg += 1;
                self.plan_stop(rng);
            }
        }
        let leg = &self.route.legs[self.leg];
        let (lat, lon) = leg.at(self.pos.min(leg.len_m));
        self.lat = lat;
        self.lon = lon;
        moved
    }

    fn arrive(&mut self, rng: &mut Rng, t: i64) {
        match self.stop {
            StopKind::Light | StopKind::None => {
                self.mode = Mode::Waiting {
                    until: t + rng.range(10_000.0, 60_000.0) as i64,
                };
            }
            StopKind::Refuel => {
                let (target, kw, overhead) = if self.ev {
                    (
                        self.capacity * rng.range(0.8, 0.95),
                        rng.range(50.0, 150.0),
                        120.0,
                    )
                } else {
                    (self.capacity * rng.range(0.92, 1.0), 0.6 * 3600.0, 90.0)
                };
                let amount = (target - self.energy).max(0.0);
                let secs = overhead + amount / kw * 3600.0;
                self.refuel_target = target;
                self.refuel_amount = amount;
                self.refuel_rate = amount / secs;
                self.mode = Mode::Refuelling {
                    until: t + (secs * 1000.0) as i64,
                };
                self.stop = StopKind::None;
                self.next_stop = f64::INFINITY;
            }
            StopKind::Destination => {
                self.mode = Mode::Parked {
                    until: t + rng.range(300_000.0, 5_400_000.0) as i64,
                };
                self.park_started = t;
                self.stop = StopKind::None;
            }
        }
    }

    /// What the sensors read now (with their noise).
    pub fn readings(&self, rng: &mut Rng, ambient: f64) -> Readings {
        let on = self.engine_on();
        let speed_kmh = self.v * 3.6;
        let (gear, rpm) = if !on {
            (0, 0.0)
        } else if self.ev {
            if self.v > 0.0 {
                (1, ev_rpm(speed_kmh))
            } else {
                (0, 0.0)
            }
        } else if self.v > 0.0 {
            let g = ice_gear(speed_kmh);
            (
                g,
                ice_rpm(speed_kmh, g).max(self.idle_rpm) * (1.0 + 0.004 * rng.noise()),
            )
        } else {
            (0, self.idle_rpm + 8.0 * rng.noise())
        };
        let oil_kpa = if on && !self.ev {
            (90.0 + 0.09 * rpm - 0.4 * (self.engine - 95.0).max(0.0)).max(60.0) + 2.0 * rng.noise()
        } else {
            0.0
        };
        let battery_v = if on {
            14.15 + self.battery_offset - 0.15 * self.load() + 0.04 * rng.noise()
        } else {
            12.55 + 0.5 * self.battery_offset + 0.01 * rng.noise()
        };
        let mut tyres = [0.0; 4];
        for (t, cold) in tyres.iter_mut().zip(self.tyre_cold) {
            *t = cold * (1.0 + 0.07 * self.tyre_warm) + (ambient - 15.0) * 0.25 + 0.3 * rng.noise();
        }
        Readings {
            lat: self.lat,
            lon: self.lon,
            speed_kmh,
            rpm,
            gear,
            engine_c: self.engine + 0.2 * rng.noise(),
            coolant_c: self.coolant + 0.15 * rng.noise(),
            oil_kpa,
            battery_v,
            tyres,
            energy_pct: self.energy_pct(),
            odometer_km: self.odometer_km,
            load: self.load(),
            accel: self.accel,
            ambient,
            on,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gears_and_rpm_are_plausible() {
        assert_eq!(ice_gear(0.0), 1);
        assert_eq!(ice_gear(50.0), 4);
        assert_eq!(ice_gear(130.0), 6);
        let r = ice_rpm(50.0, 4);
        assert!((1500.0..1800.0).contains(&r), "{r}");
        let r = ice_rpm(130.0, 6);
        assert!((2500.0..3200.0).contains(&r), "{r}");
        let r = ev_rpm(130.0);
        assert!((9000.0..11000.0).contains(&r), "{r}");
    }

    #[test]
    fn ambient_is_a_daily_cycle() {
        let day = crate::DEFAULT_START_MS; // 00:00 UTC = 01:00 CET
        assert_eq!(local_hour(day), 1);
        assert!((ambient_c(day + 4 * 3_600_000) - 4.0).abs() < 1e-9); // 05:00 CET
        assert!((ambient_c(day + 14 * 3_600_000) - 16.0).abs() < 1e-9); // 15:00 CET
        for h in 0..48 {
            let a = ambient_c(day + h * 1_800_000);
            assert!((4.0..=16.0).contains(&a));
        }
    }
}
