//! Who the cars and their owners are: VINs (ISO 3779, with the North-American check digit in
//! position 9), test card numbers (Luhn-valid, test BIN), names, accounts and merchants.

use crate::rng::Rng;

/// Characters allowed in a VIN (no I, O, Q).
const VIN_CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
/// Model-year codes 2018–2026 (position 10).
const YEARS: &[u8] = b"JKLMNPRST";
/// World manufacturer identifiers of German makers.
const WMIS: [&[u8; 3]; 7] = [b"WBA", b"WAU", b"WVW", b"WDD", b"WP0", b"WF0", b"W0L"];

/// The value of a VIN character in the check-digit sum.
fn vin_value(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'H' => u32::from(c - b'A') + 1,
        b'J'..=b'N' => u32::from(c - b'J') + 1,
        b'P' => 7,
        b'R' => 9,
        b'S'..=b'Z' => u32::from(c - b'S') + 2,
        _ => 0,
    }
}

const VIN_WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// The check digit (position 9) of a VIN: `0`–`9` or `X`.
pub fn vin_check_digit(vin: &[u8; 17]) -> u8 {
    let sum: u32 = vin
        .iter()
        .zip(VIN_WEIGHTS)
        .map(|(&c, w)| vin_value(c) * w)
        .sum();
    match sum % 11 {
        10 => b'X',
        d => b'0' + d as u8,
    }
}

/// Whether a VIN's check digit is right.
pub fn vin_is_valid(vin: &str) -> bool {
    let Ok(v) = <[u8; 17]>::try_from(vin.as_bytes()) else {
        return false;
    };
    v.iter().all(|c| VIN_CHARS.contains(c)) && v[8] == vin_check_digit(&v)
}

/// A VIN for car number `index` (< 1,000,000): maker, descriptor, year and plant drawn from
/// `rng`, the serial is the index, so VINs of one run are unique.
pub fn vin(rng: &mut Rng, index: u32) -> [u8; 17] {
    let mut v = [b'0'; 17];
    v[..3].copy_from_slice(WMIS[rng.below(WMIS.len() as u32) as usize]);
    for c in &mut v[3..8] {
        *c = VIN_CHARS[rng.below(VIN_CHARS.len() as u32) as usize];
    }
    v[9] = YEARS[rng.below(YEARS.len() as u32) as usize];
    v[10] = VIN_CHARS[rng.below(23) as usize]; // a letter: the plant
    let mut serial = index % 1_000_000;
    for c in v[11..].iter_mut().rev() {
        *c = b'0' + (serial % 10) as u8;
        serial /= 10;
    }
    v[8] = vin_check_digit(&v);
    v
}

/// The Luhn check digit for the first 15 digits.
fn luhn_digit(digits: &[u8; 16]) -> u8 {
    let mut sum = 0u32;
    for (i, &d) in digits[..15].iter().rev().enumerate() {
        let mut x = u32::from(d - b'0');
        if i % 2 == 0 {
            x *= 2;
            if x > 9 {
                x -= 9;
            }
        }
        sum += x;
    }
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// Whether a digit string passes the Luhn check.
pub fn luhn_valid(number: &str) -> bool {
    let b = number.as_bytes();
    if b.len() < 2 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Test BINs (Visa and Mastercard test ranges): never real cards.
const BINS: [&[u8; 6]; 3] = [b"400000", b"411111", b"555555"];

/// A 16-digit, Luhn-valid test card number, unique per `index`.
pub fn card_number(rng: &mut Rng, index: u32) -> [u8; 16] {
    let mut d = [b'0'; 16];
    d[..6].copy_from_slice(BINS[rng.below(BINS.len() as u32) as usize]);
    for c in &mut d[6..9] {
        *c = b'0' + rng.below(10) as u8;
    }
    let mut serial = index % 1_000_000;
    for c in d[9..15].iter_mut().rev() {
        *c = b'0' + (serial % 10) as u8;
        serial /= 10;
    }
    d[15] = luhn_digit(&d);
    d
}

const FIRST: [&str; 32] = [
    "Anna",
    "Lukas",
    "Lea",
    "Leon",
    "Marie",
    "Finn",
    "Sophie",
    "Jonas",
    "Emma",
    "Paul",
    "Mia",
    "Felix",
    "Hannah",
    "Elias",
    "Laura",
    "Noah",
    "Julia",
    "Ben",
    "Lena",
    "Maximilian",
    "Clara",
    "Tobias",
    "Sarah",
    "David",
    "Katharina",
    "Florian",
    "Johanna",
    "Stefan",
    "Ayse",
    "Mehmet",
    "Giulia",
    "Marco",
];
const LAST: [&str; 32] = [
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schroeder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krueger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Huber",
    "Gruber",
    "Maier",
    "Yilmaz",
    "Rossi",
    "Novak",
    "Kaiser",
    "Lehmann",
];

/// A card holder's name: `First Last`.
pub fn holder(rng: &mut Rng) -> String {
    let f = FIRST[rng.below(FIRST.len() as u32) as usize];
    let l = LAST[rng.below(LAST.len() as u32) as usize];
    format!("{f} {l}")
}

/// The account of car number `index`: `ACC-` and 8 digits, unique per index.
pub fn account_id(rng: &mut Rng, index: u32) -> String {
    format!("ACC-{:02}{:06}", rng.below(100), index % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vins_check_out() {
        // The check-digit example of 49 CFR 565 / Wikipedia.
        assert!(vin_is_valid("1M8GDM9AXKP042788"));
        assert!(!vin_is_valid("1M8GDM9A1KP042788"));
        assert!(!vin_is_valid("1M8GDM9AXKP04278"));
        let mut r = Rng::seed_from_u64(3);
        for i in 0..10_000 {
            let v = vin(&mut r, i);
            let s = std::str::from_utf8(&v).unwrap_or_default();
            assert!(vin_is_valid(s), "{s}");
        }
    }

    #[test]
    fn card_numbers_pass_luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
        let mut r = Rng::seed_from_u64(3);
        for i in 0..10_000 {
            let c = card_number(&mut r, i);
            let s = std::str::from_utf8(&c).unwrap_or_default();
            assert!(luhn_valid(s), "{s}");
        }
    }
}
