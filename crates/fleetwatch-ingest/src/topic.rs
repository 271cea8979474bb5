//! MQTT topic names and topic filters (MQTT 3.1.1 §4.7, 5.0 §4.7): checking them, matching
//! a name against a filter, and whether one filter covers another (for ACLs).
//!
//! A topic is `/`-separated levels; a level may be empty (`a//b`, `/a`). A filter may use
//! `+` (exactly one level) and a final `#` (the parent level and every level below it:
//! `a/#` matches `a`, `a/b` and `a/b/c`). Topics whose name starts with `$` are not
//! matched by a filter whose first level is `+` or `#`. Shared subscriptions
//! (`$share/{group}/{filter}`) are not supported.
//!
//! [`matches()`] and [`covers`] expect inputs that passed [`check_topic_name`] /
//! [`check_topic_filter`]; given anything else they do not panic, and a misplaced `+` or
//! `#` is compared as literal text rather than as a wildcard.

use thiserror::Error;

/// Longest topic name or filter, in bytes (a UTF-8 string's 16-bit length prefix).
pub const MAX_TOPIC_BYTES: usize = 65535;

/// Why a topic name or filter is refused. Levels are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    /// The empty string.
    #[error("{what} is empty")]
    Empty {
        /// `topic name` or `topic filter`.
        what: &'static str,
    },
    /// Longer than [`MAX_TOPIC_BYTES`].
    #[error("{what} is {len} bytes long, more than the {MAX_TOPIC_BYTES} MQTT allows")]
    TooLong {
        /// `topic name` or `topic filter`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// Contains U+0000.
    #[error("{what}: level {level} {text:?} contains a NUL character")]
    Nul {
        /// `topic name` or `topic filter`.
        what: &'static str,
        /// The level, from 1.
        level: usize,
        /// The level's text.
        text: String,
    },
    /// A topic name (what is published to) with `+` or `#`.
    #[error(
        "topic name: level {level} {text:?} contains a wildcard (`+` or `#`), which only subscription filters may use"
    )]
    WildcardInName {
        /// The level, from 1.
        level: usize,
        /// The level's text.
        text: String,
    },
    /// A filter level that has `+` but is not exactly `+`.
    #[error("topic filter: level {level} {text:?}: `+` must be a whole level")]
    PlusNotWholeLevel {
        /// The level, from 1.
        level: usize,
        /// The level's text.
        text: String,
    },
    /// A filter level that has `#` but is not exactly `#`.
    #[error("topic filter: level {level} {text:?}: `#` must be a whole level")]
    HashNotWholeLevel {
        /// The level, from 1.
        level: usize,
        /// The level's text.
        text: String,
    },
    /// A `#` level that is not the last one.
    #[error("topic filter: `#` at level {level} must be the last level (it has {levels})")]
    HashNotLast {
        /// The level of the `#`, from 1.
        level: usize,
        /// How many levels the filter has.
        levels: usize,
    },
    /// `$share/…`.
    #[error(
        "topic filter: level 1 \"$share\": shared subscriptions ($share/{{group}}/{{filter}}) are not supported"
    )]
    SharedSubscription,
}

fn check_common(what: &'static str, s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty { what });
    }
    if s.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong { what, len: s.len() });
    }
    match s.split('/').enumerate().find(|(_, l)| l.contains('\0')) {
        Some((i, l)) => Err(TopicError::Nul {
            what,
            level: i + 1,
            text: l.to_string(),
        }),
        None => Ok(()),
    }
}

/// Checks a topic name (what a PUBLISH names): not empty, at most 65535 bytes, no NUL, no
/// `+` or `#`.
pub fn check_topic_name(name: &str) -> Result<(), TopicError> {
    check_common("topic name", name)?;
    if let Some((i, l)) = name
        .split('/')
        .enumerate()
        .find(|(_, l)| l.contains(['+', '#']))
    {
        return Err(TopicError::WildcardInName {
            level: i + 1,
            text: l.to_string(),
        });
    }
    Ok(())
}

/// Checks a topic filter (what a SUBSCRIBE names): not empty, at most 65535 bytes, no NUL,
/// `+` only as a whole level, `#` only as the whole last level, and not a shared
/// subscription (`$share/…`, unsupported).
pub fn check_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_common("topic filter", filter)?;
    let levels = filter.split('/').count();
    for (i, l) in filter.split('/').enumerate() {
        if i == 0 && l == "$share" {
            return Err(TopicError::SharedSubscription);
        }
        match l {
            "+" => {}
            "#" if i + 1 == levels => {}
            "#" => {
                return Err(TopicError::HashNotLast {
                    level: i + 1,
                    levels,
                });
            }
            _ if l.contains('+') => {
                return Err(TopicError::PlusNotWholeLevel {
                    level: i + 1,
                    text: l.to_string(),
                });
            }
            _ if l.contains('#') => {
                return Err(TopicError::HashNotWholeLevel {
                    level: i + 1,
                    text: l.to_string(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// One filter level, as the matching functions read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lv<'a> {
    Lit(&'a str),
    Plus,
    /// Only the last level; elsewhere `#` is read as a literal.
    Hash,
}

fn levels(filter: &str) -> Vec<Lv<'_>> {
    let n = filter.split('/').count();
    filter
        .split('/')
        .enumerate()
        .map(|(i, l)| match l {
            "+" => Lv::Plus,
            "#" if i + 1 == n => Lv::Hash,
            l => Lv::Lit(l),
        })
        .collect()
}

/// Whether the filter's first level is a wildcard (which does not match `$` topics).
fn wild_first(f: &[Lv<'_>]) -> bool {
    matches!(f.first(), Some(Lv::Plus | Lv::Hash))
}

/// Whether the topic name `topic` matches the filter `filter`.
pub fn matches(filter: &str, topic: &str) -> bool {
    let f = levels(filter);
    if topic.starts_with('$') && wild_first(&f) {
        return false;
    }
    let mut t = topic.split('/');
    for lv in f {
        match lv {
            Lv::Hash => return true,
            Lv::Plus => {
                if t.next().is_none() {
                    return false;
                }
            }
            Lv::Lit(l) => {
                if t.next() != Some(l) {
                    return false;
                }
            }
        }
    }
    t.next().is_none()
}

/// Whether every topic name the filter `inner` matches is also matched by the filter
/// `outer` (a subscription to `inner` lies within a permission for `outer`):
/// `covers("fleet/#", "fleet/+/alerts")` and `covers("a/+", "a/b")` hold,
/// `covers("fleet/+/alerts", "fleet/#")` does not.
pub fn covers(outer: &str, inner: &str) -> bool {
    let o = levels(outer);
    let mut i = levels(inner);
    // A `#` also matches its parent topic, except where that would be the empty topic
    // name, which no client can publish to: there `#` stands for `+/#`.
    match i.as_slice() {
        [Lv::Hash] => i.insert(0, Lv::Plus),
        [Lv::Lit(""), Lv::Hash] => i.insert(1, Lv::Plus),
        _ => {}
    }
    // `inner` can match `$` topics only through a literal first level starting with `$`
    // (its own wildcard would not); an `outer` starting with a wildcard matches none.
    if wild_first(&o) && matches!(i.first(), Some(Lv::Lit(l)) if l.starts_with('$')) {
        return false;
    }
    let mut k = 0;
    loop {
        match (o.get(k), i.get(k)) {
            // Every topic `inner` still matches has the levels so far, which is all a `#`
            // asks (`a/#` also matches `a`).
            (Some(Lv::Hash), _) => return true,
            // `inner` matches the parent level and deeper ones; `outer` asks for one more
            // level (or stops here), so it misses one of them.
            (_, Some(Lv::Hash)) => return false,
            (Some(Lv::Plus), Some(Lv::Plus | Lv::Lit(_))) => {}
            (Some(Lv::Lit(a)), Some(Lv::Lit(b))) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["a", "a/b", "/", "a//b", "/a", "$SYS/x", "a b/ü", "{x}"] {
            assert_eq!(check_topic_name(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(
            check_topic_name(""),
            Err(TopicError::Empty { what: "topic name" })
        );
        let e = check_topic_name("a/b+c").unwrap_err();
        assert_eq!(
            e,
            TopicError::WildcardInName {
                level: 2,
                text: "b+c".into()
            }
        );
        assert!(e.to_string().contains("level 2 \"b+c\""), "{e}");
        assert!(matches!(
            check_topic_name("a/#"),
            Err(TopicError::WildcardInName { level: 2, .. })
        ));
        let e = check_topic_name("a/b/c\0").unwrap_err();
        assert!(matches!(e, TopicError::Nul { level: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("NUL"), "{e}");
        let long = "x".repeat(MAX_TOPIC_BYTES);
        assert_eq!(check_topic_name(&long), Ok(()));
        let e = check_topic_name(&(long + "y")).unwrap_err();
        assert!(matches!(e, TopicError::TooLong { len: 65536, .. }), "{e:?}");
    }

    #[test]
    fn topic_filters() {
        for ok in [
            "a", "#", "+", "a/#", "a/+/b", "+/+", "/+", "a//#", "$SYS/#", "a/$share",
        ] {
            assert_eq!(check_topic_filter(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(
            check_topic_filter(""),
            Err(TopicError::Empty {
                what: "topic filter"
            })
        );
        assert_eq!(
            check_topic_filter("a/#/b"),
            Err(TopicError::HashNotLast {
                level: 2,
                levels: 3
            })
        );
        assert_eq!(
            check_topic_filter("a/b#"),
            Err(TopicError::HashNotWholeLevel {
                level: 2,
                text: "b#".into()
            })
        );
        let e = check_topic_filter("a+/b").unwrap_err();
        assert_eq!(
            e,
            TopicError::PlusNotWholeLevel {
                level: 1,
                text: "a+".into()
            }
        );
        assert!(e.to_string().contains("level 1 \"a+\""), "{e}");
        assert!(matches!(
            check_topic_filter("+/\0"),
            Err(TopicError::Nul { level: 2, .. })
        ));
        for shared in ["$share/g/a/b", "$share/g/#", "$share"] {
            let e = check_topic_filter(shared).unwrap_err();
            assert_eq!(e, TopicError::SharedSubscription, "{shared}");
            assert!(e.to_string().contains("not supported"), "{e}");
        }
        assert!(matches!(
            check_topic_filter(&"+/".repeat(40_000)),
            Err(TopicError::TooLong { .. })
        ));
    }

    #[test]
    fn matching() {
        let table: &[(&str, &str, bool)] = &[
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("a/+", "a/b", true),
            ("a/+", "a", false),
            ("a/+", "a/", true),
            ("a/+", "a/b/c", false),
            ("+/+", "/x", true),
            ("+", "/x", false),
            ("/+", "/x", true),
            ("a/#", "a", true),
            ("a/#", "a/", true),
            ("a/#", "a/b/c", true),
            ("a/#", "ab", false),
            ("a/#", "b/a", false),
            ("#", "a/b", true),
            ("#", "/", true),
            ("a/+/c/#", "a/b/c", true),
            ("a/+/c/#", "a/b/d", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("+", "$SYS", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/+", "$SYS/x", true),
            ("a/+", "a/$x", true),
            ("a/#", "a/$x", true),
            ("fleet/+/alerts", "fleet/V1/alerts", true),
            ("fleet/+/alerts", "fleet/V1/alerts/x", false),
            // Misplaced wildcards are read as literal text.
            ("a/#/b", "a/x/b", false),
            ("a/#/b", "a/#/b", true),
        ];
        for (f, t, want) in table {
            assert_eq!(matches(f, t), *want, "matches({f:?}, {t:?})");
        }
    }

    #[test]
    fn covering() {
        let table: &[(&str, &str, bool)] = &[
            ("fleet/#", "fleet/+/alerts", true),
            ("fleet/+/alerts", "fleet/#", false),
            ("a/+", "a/b", true),
            ("a/b", "a/+", false),
            ("a/b", "a/b", true),
            ("a/+", "a/+", true),
            ("a/#", "a/#", true),
            ("a/#", "a", true),
            ("a", "a/#", false),
            ("a/+", "a/#", false),
            ("a/+/#", "a/#", false),
            ("a/+/#", "a/b/#", true),
            ("a/#", "a/+/#", true),
            ("#", "a/b", true),
            ("#", "#", true),
            ("#", "+", true),
            ("+", "#", false),
            ("+", "a", true),
            ("+", "a/b", false),
            ("+/+", "a/+", true),
            ("+/+", "+", false),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("#", "$SYS/x", false),
            ("#", "$SYS/#", false),
            ("+/#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/+", true),
            ("$SYS/+", "$SYS/x", true),
            ("#", "a/$x", true),
            ("a/+", "a/$x", true),
            ("#", "+/#", true),
            ("+/#", "#", true),
            ("+/+/#", "/#", true),
            ("/+/#", "/#", true),
            ("+/#", "/#", true),
            ("+/+/#", "+/#", false),
            ("a/+/#", "a/#", false),
        ];
        for (o, i, want) in table {
            assert_eq!(covers(o, i), *want, "covers({o:?}, {i:?})");
        }
    }

    /// xorshift64: a deterministic generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    /// Literal levels: enough distinct ones that a counterexample can always be named.
    const LITERALS: [&str; 4] = ["a", "b", "$a", ""];

    fn filter(r: &mut Rng) -> String {
        let n = 1 + r.below(3);
        let mut levels: Vec<&str> = (0..n)
            .map(|_| r.pick(&["a", "b", "$a", "", "+", "+"]))
            .collect();
        if r.below(3) == 0 {
            levels.push("#");
        }
        match levels.join("/") {
            // The one invalid combination: a single empty level.
            f if f.is_empty() => "b".into(),
            f => f,
        }
    }

    fn topic(r: &mut Rng) -> String {
        let n = 1 + r.below(5);
        match (0..n)
            .map(|_| r.pick(&LITERALS))
            .collect::<Vec<_>>()
            .join("/")
        {
            t if t.is_empty() => "b".into(),
            t => t,
        }
    }

    /// Every topic of 1 to 5 levels over [`LITERALS`]: deep enough to exhibit, for filters
    /// of up to 4 levels, a topic one filter matches and the other does not.
    fn all_topics() -> Vec<String> {
        let mut out = Vec::new();
        let mut layer = vec![String::new()];
        for depth in 1..=5 {
            let mut next = Vec::new();
            for prefix in &layer {
                for l in LITERALS {
                    next.push(if depth == 1 {
                        l.to_string()
                    } else {
                        format!("{prefix}/{l}")
                    });
                }
            }
            out.extend(next.iter().filter(|t| !t.is_empty()).cloned());
            layer = next;
        }
        out
    }

    #[test]
    fn covers_implies_every_match_is_a_match_of_the_outer_filter() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut covered = 0;
        for _ in 0..20_000 {
            let (o, i, t) = (filter(&mut r), filter(&mut r), topic(&mut r));
            assert_eq!(check_topic_name(&t), Ok(()), "{t}");
            assert_eq!(check_topic_filter(&o), Ok(()), "{o}");
            assert_eq!(check_topic_filter(&i), Ok(()), "{i}");
            if covers(&o, &i) {
                covered += 1;
                assert!(
                    !matches(&i, &t) || matches(&o, &t),
                    "covers({o:?}, {i:?}) but {t:?} matches only the inner"
                );
            }
        }
        assert!(covered > 1000, "only {covered} covering pairs generated");
    }

    #[test]
    fn covers_is_exact_over_every_small_topic() {
        let topics = all_topics();
        let mut r = Rng(0xD1B5_4A32_D192_ED03);
        let (mut yes, mut no) = (0, 0);
        for _ in 0..1500 {
            let (o, i) = (filter(&mut r), filter(&mut r));
            let subset = topics.iter().all(|t| !matches(&i, t) || matches(&o, t));
            assert_eq!(check_topic_filter(&o), Ok(()), "{o}");
            assert_eq!(check_topic_filter(&i), Ok(()), "{i}");
            assert_eq!(covers(&o, &i), subset, "covers({o:?}, {i:?})");
            if subset { yes += 1 } else { no += 1 }
        }
        assert!(yes > 50 && no > 50, "{yes} covering, {no} not");
    }
}
