//! Where the cars drive: a handful of real cities of southern Germany (Munich, Stuttgart and
//! around), routes between them (urban exit, one or two highway legs, urban entry), distances
//! and the far cities that a cloned card turns up in.

use crate::rng::{Rng, cos};

/// Metres per degree of latitude (and of longitude at the equator).
pub const M_PER_DEG: f64 = 111_320.0;

/// A city of the region.
#[derive(Debug, Clone, Copy)]
pub struct City {
    /// Name.
    pub name: &'static str,
    /// Latitude of the centre, degrees.
    pub lat: f64,
    /// Longitude of the centre, degrees.
    pub lon: f64,
}

const fn city(name: &'static str, lat: f64, lon: f64) -> City {
    City { name, lat, lon }
}

/// The cities cars drive between.
pub const CITIES: [City; 11] = [
    city("Munich", 48.1374, 11.5755),
    city("Augsburg", 48.3705, 10.8978),
    city("Ingolstadt", 48.7665, 11.4258),
    city("Nuremberg", 49.4521, 11.0767),
    city("Regensburg", 49.0134, 12.1016),
    city("Ulm", 48.4011, 9.9876),
    city("Stuttgart", 48.7758, 9.1829),
    city("Heilbronn", 49.1427, 9.2109),
    city("Karlsruhe", 49.0069, 8.4037),
    city("Landshut", 48.5442, 12.1469),
    city("Rosenheim", 47.8571, 12.1181),
];

/// Cities outside the region, with their currency: where a cloned card is used.
pub const FAR_CITIES: [(City, &str); 8] = [
    (city("Berlin", 52.5200, 13.4050), "EUR"),
    (city("Hamburg", 53.5511, 9.9937), "EUR"),
    (city("Paris", 48.8566, 2.3522), "EUR"),
    (city("Milan", 45.4642, 9.1900), "EUR"),
    (city("Vienna", 48.2082, 16.3738), "EUR"),
    (city("Prague", 50.0755, 14.4378), "CZK"),
    (city("Zurich", 47.3769, 8.5417), "CHF"),
    (city("Amsterdam", 52.3676, 4.9041), "EUR"),
];

/// Metres from (lat1, lon1) to (lat2, lon2), equirectangular (good to ≈ 0.5 % at these
/// distances).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let k = cos(((lat1 + lat2) / 2.0).to_radians());
    let dy = (lat2 - lat1) * M_PER_DEG;
    let dx = (lon2 - lon1) * M_PER_DEG * k;
    (dx * dx + dy * dy).sqrt()
}

/// A straight piece of a route.
#[derive(Debug, Clone, Copy, Default)]
pub struct Leg {
    /// Start latitude.
    pub lat0: f64,
    /// Start longitude.
    pub lon0: f64,
    /// Length, metres.
    pub len_m: f64,
    /// Degrees of latitude per metre along the leg.
    pub dlat: f64,
    /// Degrees of longitude per metre along the leg.
    pub dlon: f64,
    /// Speed limit, km/h.
    pub limit_kmh: f64,
    /// Urban (traffic lights) or not.
    pub urban: bool,
}

impl Leg {
    fn between(a: (f64, f64), b: (f64, f64), limit_kmh: f64, urban: bool) -> Leg {
        let k = cos(((a.0 + b.0) / 2.0).to_radians());
        let dy = (b.0 - a.0) * M_PER_DEG;
        let dx = (b.1 - a.1) * M_PER_DEG * k;
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        Leg {
            lat0: a.0,
            lon0: a.1,
            len_m: len,
            dlat: (b.0 - a.0) / len,
            dlon: (b.1 - a.1) / len,
            limit_kmh,
            urban,
        }
    }

    /// The point `pos` metres along the leg.
    #[inline]
    pub fn at(&self, pos: f64) -> (f64, f64) {
        (self.lat0 + self.dlat * pos, self.lon0 + self.dlon * pos)
    }
}

/// Legs of a route.
pub const LEGS: usize = 4;

/// A trip from one city to another: urban exit, two highway legs (via a point off the
/// straight line), urban entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Route {
    /// The legs, in order.
    pub legs: [Leg; LEGS],
}

/// A point near a city's centre.
pub fn near(rng: &mut Rng, c: &City) -> (f64, f64) {
    (
        c.lat + rng.range(-0.02, 0.02),
        c.lon + rng.range(-0.03, 0.03),
    )
}

impl Route {
    /// A route from `from` (a point) to a point near city `to`.
    pub fn plan(rng: &mut Rng, from: (f64, f64), to: &City) -> Route {
        let dest = near(rng, to);
        let k = cos(((from.0 + dest.0) / 2.0).to_radians());
        // Work in a local metric frame (x east, y north), metres from `from`.
        let dx = (dest.1 - from.1) * M_PER_DEG * k;
        let dy = (dest.0 - from.0) * M_PER_DEG;
        let d = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / d, dy / d);
        let (px, py) = (-uy, ux);
        let pt = |along: f64, side: f64| -> (f64, f64) {
            let x = ux * along + px * side;
            let y = uy * along + py * side;
            (from.0 + y / M_PER_DEG, from.1 + x / (M_PER_DEG * k))
        };
        let urban_out = rng.range(3_000.0, 6_000.0).min(d * 0.2);
        let urban_in = rng.range(3_000.0, 6_000.0).min(d * 0.2);
        let exit = pt(urban_out, rng.range(-800.0, 800.0));
        let mid = pt(d * rng.range(0.4, 0.6), d * rng.range(-0.08, 0.08));
        let entry = pt(d - urban_in, rng.range(-800.0, 800.0));
        let hw = |rng: &mut Rng| [100.0, 120.0, 130.0, 130.0][rng.below(4) as usize];
        let urban = |rng: &mut Rng| if rng.chance(0.7) { 50.0 } else { 60.0 };
        Route {
            legs: [
                Leg::between(from, exit, urban(rng), true),
                Leg::between(exit, mid, hw(rng), false),
                Leg::between(mid, entry, hw(rng), false),
                Leg::between(entry, dest, urban(rng), true),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_join_up_and_end_near_the_destination() {
        let mut r = Rng::seed_from_u64(1);
        for i in 0..200 {
            let from = near(&mut r, &CITIES[i % CITIES.len()]);
            let to = &CITIES[(i + 3) % CITIES.len()];
            let route = Route::plan(&mut r, from, to);
            let mut p = from;
            for leg in &route.legs {
                assert!((leg.lat0 - p.0).abs() < 1e-9 && (leg.lon0 - p.1).abs() < 1e-9);
                p = leg.at(leg.len_m);
            }
            assert!(distance_m(p.0, p.1, to.lat, to.lon) < 4_000.0);
        }
        let m = &CITIES[0];
        let s = &CITIES[6];
        let d = distance_m(m.lat, m.lon, s.lat, s.lon);
        assert!((185_000.0..195_000.0).contains(&d), "Munich–Stuttgart {d}");
    }
}
