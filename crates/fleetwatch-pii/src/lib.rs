//! Personal data, handled in one place: the masking functions of ksqlDB (`MASK`,
//! `MASK_KEEP_LEFT`, `MASK_KEEP_RIGHT`, `MASK_LEFT`, `MASK_RIGHT`) and keyed pseudonymisation
//! (`HASH_PII`: HMAC-SHA-256 under a named key). SQL functions, the replicator's PII guard and
//! connector transforms call these; none of them re-implements a mask.
//!
//! This crate knows nothing of SQL, Arrow or the log: it works on `&str` / bytes and writes into
//! caller-owned buffers (`*_into`), so a column of a million values costs no allocation per value.
//!
//! **Masks** follow ksqlDB: each character is classed as upper case, lower case, digit or other
//! (in that order of tests, by Unicode properties) and replaced by that class's mask character
//! — `X`, `x`, `n`, `-` by default; `None` keeps that class as it is. `MASK("My Test $123")` is
//! `Xx-Xxxx--nnn`. Counts (`n` in the `_LEFT`/`_RIGHT` forms) are in characters (Unicode
//! scalar values; ksqlDB counts UTF-16 units, which differs only outside the BMP); a negative
//! count is an error, as in ksqlDB.
//!
//! **Pseudonyms**: `hash_pii(value, key)` is the lowercase hex of HMAC-SHA-256(key, value): the
//! same value under the same key gives the same pseudonym on every run and machine (so joins on
//! pseudonyms work), and without the key it cannot be reversed or recomputed from a guess. Keys
//! live in a key file (`[pii] hash_key_file`), one `name = base64` per line, each ≥ 16 bytes; a
//! rotated key is a new name.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// What can go wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PiiError {
    /// A character count below zero.
    #[error("{function}: the number of characters must be >= 0, got {n}")]
    NegativeCount {
        /// The function.
        function: &'static str,
        /// The count given.
        n: i64,
    },
    /// No key of that name in the key file.
    #[error("HASH_PII: no key named {name:?} in the hash key file{known}")]
    UnknownKey {
        /// The name asked for.
        name: String,
        /// `" (it has: a, b)"`, or a hint that no file is configured.
        known: String,
    },
    /// The key file cannot be used.
    #[error("hash key file {path}: {why}")]
    KeyFile {
        /// Its path.
        path: String,
        /// What is wrong, with the line.
        why: String,
    },
}

/// The replacement of each character class; `None` keeps characters of that class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskChars {
    /// For upper-case letters (default `X`).
    pub upper: Option<char>,
    /// For lower-case letters (default `x`).
    pub lower: Option<char>,
    /// For digits (default `n`).
    pub digit: Option<char>,
    /// For everything else (default `-`).
    pub other: Option<char>,
}

impl Default for MaskChars {
    fn default() -> Self {
        MaskChars {
            upper: Some('X'),
            lower: Some('x'),
            digit: Some('n'),
            other: Some('-'),
        }
    }
}

impl MaskChars {
    /// Whether every replacement character is ASCII (or kept as is).
    #[inline]
    pub fn is_ascii(&self) -> bool {
        [self.upper, self.lower, self.digit, self.other]
            .iter()
            .all(|c| c.is_none_or(|c| c.is_ascii()))
    }

    /// The mask of one character.
    #[inline]
    pub fn mask(&self, c: char) -> char {
        if c.is_ascii() {
            let m = if c.is_ascii_uppercase() {
                self.upper
            } else if c.is_ascii_lowercase() {
                self.lower
            } else if c.is_ascii_digit() {
                self.digit
            } else {
                self.other
            };
            return m.unwrap_or(c);
        }
        let m = if c.is_uppercase() {
            self.upper
        } else if c.is_lowercase() {
            self.lower
        } else if c.is_numeric() {
            self.digit
        } else {
            self.other
        };
        m.unwrap_or(c)
    }
}

/// Which characters a mask function touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Every character (`MASK`).
    All,
    /// All but the first `n` (`MASK_KEEP_LEFT`).
    KeepLeft(usize),
    /// All but the last `n` (`MASK_KEEP_RIGHT`).
    KeepRight(usize),
    /// Only the first `n` (`MASK_LEFT`).
    Left(usize),
    /// Only the last `n` (`MASK_RIGHT`).
    Right(usize),
}

impl Span {
    /// Whether character `i` of a text of `len` characters is masked (`len` is only read by
    /// the right-anchored spans).
    #[inline]
    pub fn masks(self, i: usize, len: usize) -> bool {
        match self {
            Span::All => true,
            Span::KeepLeft(n) => i >= n,
            Span::KeepRight(n) => i + n < len,
            Span::Left(n) => i < n,
            Span::Right(n) => i + n >= len,
        }
    }

    /// The span of a ksqlDB function given its count argument (an error if negative).
    pub fn of(function: &'static str, n: i64) -> Result<Span, PiiError> {
        let count = usize::try_from(n).map_err(|_| PiiError::NegativeCount { function, n })?;
        Ok(match function {
            "MASK_KEEP_LEFT" => Span::KeepLeft(count),
            "MASK_KEEP_RIGHT" => Span::KeepRight(count),
            "MASK_LEFT" => Span::Left(count),
            "MASK_RIGHT" => Span::Right(count),
            _ => Span::All,
        })
    }
}

/// Appends the masked `input` to `out`.
pub fn mask_into(out: &mut String, input: &str, span: Span, chars: &MaskChars) {
    if input.is_ascii() && chars.is_ascii() {
        mask_ascii_into(out, input.as_bytes(), span, chars);
    } else {
        mask_chars_into(out, input, span, chars);
    }
}

/// [`mask_into`] a character at a time (any input).
fn mask_chars_into(out: &mut String, input: &str, span: Span, chars: &MaskChars) {
    // Character positions are only needed for the right-anchored spans.
    let len = match span {
        Span::KeepRight(_) | Span::Right(_) if input.is_ascii() => input.len(),
        Span::KeepRight(_) | Span::Right(_) => input.chars().count(),
        _ => 0,
    };
    out.reserve(input.len());
    for (i, c) in input.chars().enumerate() {
        let masked = span.masks(i, len);
        out.push(if masked { chars.mask(c) } else { c });
    }
}

/// [`mask_into`] for ASCII input and ASCII mask characters: bytes are characters, masked
/// through a stack buffer and appended a chunk at a time.
fn mask_ascii_into(out: &mut String, input: &[u8], span: Span, chars: &MaskChars) {
    let len = input.len();
    let (upper, lower, digit, other) = (
        chars.upper.map(|c| c as u8),
        chars.lower.map(|c| c as u8),
        chars.digit.map(|c| c as u8),
        chars.other.map(|c| c as u8),
    );
    out.reserve(len);
    let mut buf = [0u8; 64];
    for (ci, chunk) in input.chunks(buf.len()).enumerate() {
        for (j, &b) in chunk.iter().enumerate() {
            let i = ci * 64 + j;
            let masked = span.masks(i, len);
            buf[j] = if !masked {
                b
            } else {
                let m = match b {
                    b'A'..=b'Z' => upper,
                    b'a'..=b'z' => lower,
                    b'0'..=b'9' => digit,
                    _ => other,
                };
                m.unwrap_or(b)
            };
        }
        // ASCII in, ASCII out: always valid UTF-8.
        if let Ok(s) = std::str::from_utf8(&buf[..chunk.len()]) {
            out.push_str(s);
        }
    }
}

/// `input` masked (see [`mask_into`]).
pub fn mask(input: &str, span: Span, chars: &MaskChars) -> String {
    let mut s = String::with_capacity(input.len());
    mask_into(&mut s, input, span, chars);
    s
}

type HmacSha256 = Hmac<Sha256>;

/// The named keys of a hash key file.
#[derive(Clone, Default)]
pub struct HashKeys {
    keys: BTreeMap<String, HmacSha256>,
}

impl std::fmt::Debug for HashKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key bytes.
        f.debug_struct("HashKeys")
            .field("names", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

impl HashKeys {
    /// Reads a key file: `name = base64` per line (`#` comments, blank lines allowed).
    pub fn load(path: &Path) -> Result<HashKeys, PiiError> {
        let text = std::fs::read_to_string(path).map_err(|e| PiiError::KeyFile {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        HashKeys::parse(&text, &path.display().to_string())
    }

    /// Parses key-file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<HashKeys, PiiError> {
        let err = |line: usize, why: String| PiiError::KeyFile {
            path: origin.to_string(),
            why: format!("line {line}: {why}"),
        };
        let mut keys = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| err(i + 1, "expected `name = base64-key`".into()))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return Err(err(
                    i + 1,
                    format!("key name {name:?}: use letters, digits, _ - ."),
                ));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|e| err(i + 1, format!("key {name:?} is not base64: {e}")))?;
            if bytes.len() < MIN_KEY_BYTES {
                return Err(err(
                    i + 1,
                    format!(
                        "key {name:?} has {} bytes; at least {MIN_KEY_BYTES} are needed",
                        bytes.len()
                    ),
                ));
            }
            let mac = HmacSha256::new_from_slice(&bytes)
                .map_err(|e| err(i + 1, format!("key {name:?}: {e}")))?;
            if keys.insert(name.to_string(), mac).is_some() {
                return Err(err(i + 1, format!("key {name:?} is defined twice")));
            }
        }
        Ok(HashKeys { keys })
    }

    /// The key names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Whether a key of this name exists (to refuse a statement before it runs).
    pub fn contains(&self, name: &str) -> bool {
        self.keys.contains_key(name)
    }

    /// Appends the pseudonym of `value` under key `name` (64 lowercase hex digits) to `out`.
    pub fn hash_into(&self, out: &mut String, value: &[u8], name: &str) -> Result<(), PiiError> {
        let mac = self.keys.get(name).ok_or_else(|| PiiError::UnknownKey {
            name: name.to_string(),
            known: if self.keys.is_empty() {
                " (no keys: set [pii] hash_key_file)".into()
            } else {
                format!(
                    " (it has: {})",
                    self.keys.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            },
        })?;
        let mut mac = mac.clone();
        mac.update(value);
        out.reserve(64);
        for b in mac.finalize().into_bytes() {
            let _ = write!(out, "{b:02x}");
        }
        Ok(())
    }

    /// The pseudonym of `value` under key `name`.
    pub fn hash_pii(&self, value: &[u8], name: &str) -> Result<String, PiiError> {
        let mut s = String::with_capacity(64);
        self.hash_into(&mut s, value, name)?;
        Ok(s)
    }
}

/// A new key-file line `name = <32 random bytes, base64>` from `random` (the caller supplies
/// the bytes, e.g. read from `/dev/urandom`).
pub fn key_line(name: &str, random: &[u8; 32]) -> String {
    format!(
        "{name} = {}",
        base64::engine::general_purpose::STANDARD.encode(random)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: &str = "My Test $123";

    fn f(function: &'static str, n: i64) -> String {
        mask(S, Span::of(function, n).unwrap(), &MaskChars::default())
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_path_masks_as_the_character_path(
            input in "[ -~]{0,150}",
            n in 0usize..160,
            which in 0u8..5,
            keep in proptest::option::of(proptest::char::range('!', '~')),
        ) {
            let span = match which {
                0 => Span::All,
                1 => Span::KeepLeft(n),
                2 => Span::KeepRight(n),
                3 => Span::Left(n),
                _ => Span::Right(n),
            };
            let chars = MaskChars { upper: Some('X'), lower: keep, digit: Some('n'), other: None };
            let (mut fast, mut slow) = (String::from("prefix:"), String::from("prefix:"));
            mask_ascii_into(&mut fast, input.as_bytes(), span, &chars);
            mask_chars_into(&mut slow, &input, span, &chars);
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn the_examples_of_the_ksqldb_documentation() {
        assert_eq!(mask(S, Span::All, &MaskChars::default()), "Xx-Xxxx--nnn");
        assert_eq!(f("MASK_KEEP_LEFT", 4), "My Txxx--nnn");
        assert_eq!(f("MASK_KEEP_RIGHT", 4), "Xx-Xxxx-$123");
        assert_eq!(f("MASK_LEFT", 4), "Xx-Xest $123");
        assert_eq!(f("MASK_RIGHT", 4), "My Test -nnn");
    }

    #[test]
    fn custom_and_kept_classes_counts_past_the_end_and_negative_counts() {
        let chars = MaskChars {
            upper: Some('U'),
            lower: None,
            digit: Some('#'),
            other: None,
        };
        assert_eq!(mask(S, Span::All, &chars), "Uy Uest $###");
        assert_eq!(f("MASK_LEFT", 100), "Xx-Xxxx--nnn");
        assert_eq!(f("MASK_KEEP_LEFT", 100), S);
        assert_eq!(f("MASK_RIGHT", 0), S);
        assert_eq!(
            Span::of("MASK_LEFT", -1),
            Err(PiiError::NegativeCount {
                function: "MASK_LEFT",
                n: -1
            })
        );
        // Non-ASCII letters are letters; counts are in characters.
        assert_eq!(
            mask("Ärger ß", Span::Left(2), &MaskChars::default()),
            "Xxger ß"
        );
        assert_eq!(mask("", Span::All, &MaskChars::default()), "");
    }

    #[test]
    fn pseudonyms_are_rfc_4231_hmac_sha256_and_stable() {
        // RFC 4231 test case 1: key 0x0b × 20, data "Hi There".
        let key = base64::engine::general_purpose::STANDARD.encode([0x0bu8; 20]);
        let keys = HashKeys::parse(&format!("# fleet keys\nvin = {key}\n"), "t").unwrap();
        assert_eq!(
            keys.hash_pii(b"Hi There", "vin").unwrap(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            keys.hash_pii(b"WVW123", "vin").unwrap(),
            keys.hash_pii(b"WVW123", "vin").unwrap()
        );
        let e = keys.hash_pii(b"x", "card").unwrap_err().to_string();
        assert!(e.contains("\"card\"") && e.contains("it has: vin"), "{e}");
        assert!(format!("{keys:?}").contains("vin") && !format!("{keys:?}").contains(&key));
    }

    #[test]
    fn key_file_errors_name_the_line() {
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 8]);
        let long = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        for (text, want) in [
            ("novalue\n".to_string(), "line 1: expected"),
            (format!("\na = {short}"), "line 2: key \"a\" has 8 bytes"),
            ("a = !!!".to_string(), "line 1: key \"a\" is not base64"),
            (
                format!("a = {long}\na = {long}"),
                "line 2: key \"a\" is defined twice",
            ),
            (format!("a b = {long}"), "line 1: key name"),
        ] {
            let e = HashKeys::parse(&text, "keys.txt").unwrap_err().to_string();
            assert!(e.contains("keys.txt") && e.contains(want), "{text:?}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, key_line("card", &[7; 32])).unwrap();
        let keys = HashKeys::load(&p).unwrap();
        assert_eq!(keys.names().collect::<Vec<_>>(), ["card"]);
        assert!(keys.contains("card"));
    }

    proptest! {
        #[test]
        fn masks_keep_the_length_and_the_unmasked_part(s in "\\PC{0,40}", n in 0usize..50) {
            let d = MaskChars::default();
            let len = s.chars().count();
            for span in [Span::All, Span::KeepLeft(n), Span::KeepRight(n), Span::Left(n), Span::Right(n)] {
                let m = mask(&s, span, &d);
                prop_assert_eq!(m.chars().count(), len);
            }
            let kept: String = s.chars().take(n).collect();
            let masked = mask(&s, Span::KeepLeft(n), &d);
            prop_assert!(masked.starts_with(&kept));
            // Masking every class leaves only mask characters.
            prop_assert!(mask(&s, Span::All, &d).chars().all(|c| "Xxn-".contains(c)));
        }
    }
}
