//! MQTT topic names and filters (MQTT 3.1.1 and 5.0, §4.7): checks and matching.

/// Why a topic name or filter is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Empty.
    #[error("a topic may not be empty")]
    Empty,
    /// Over 65,535 bytes.
    #[error("topic of {0} bytes is over 65535")]
    TooLong(usize),
    /// Contains U+0000.
    #[error("topic {0:?} contains a NUL character")]
    Nul(String),
    /// A wildcard in a topic name.
    #[error("topic name {0:?} contains a wildcard (+ or #); only filters may")]
    WildcardInName(String),
    /// A wildcard not on a level of its own, or `#` not last.
    #[error(
        "filter {filter:?}: level {level} `{text}`: + and # stand alone in a level, and # only last"
    )]
    BadWildcard {
        /// The filter.
        filter: String,
        /// 1-based level.
        level: usize,
        /// The level's text.
        text: String,
    },
    /// A shared subscription.
    #[error("shared subscriptions ($share/…) are not supported: {0:?}")]
    Shared(String),
}

fn common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > 65535 {
        return Err(TopicError::TooLong(s.len()));
    }
    if s.contains('\0') {
        return Err(TopicError::Nul(s.to_string()));
    }
    Ok(())
}

/// Checks a topic name (what PUBLISH carries).
pub fn check_topic_name(name: &str) -> Result<(), TopicError> {
    common(name)?;
    if name.contains(['+', '#']) {
        return Err(TopicError::WildcardInName(name.to_string()));
    }
    Ok(())
}

/// Checks a topic filter (what SUBSCRIBE carries).
pub fn check_topic_filter(filter: &str) -> Result<(), TopicError> {
    common(filter)?;
    if filter.starts_with("$share/") {
        return Err(TopicError::Shared(filter.to_string()));
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        let bad = (l.contains('+') && *l != "+")
            || (l.contains('#') && (*l != "#" || i + 1 != levels.len()));
        if bad {
            return Err(TopicError::BadWildcard {
                filter: filter.to_string(),
                level: i + 1,
                text: l.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether `filter` matches topic name `topic`. `a/#` matches `a` too; a topic starting
/// with `$` is not matched by a filter starting with a wildcard.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether every topic `inner` matches is matched by `outer` (both valid filters).
pub fn covers(outer: &str, inner: &str) -> bool {
    // `$` topics are matched by a `$` literal first level only.
    if inner.starts_with('$') && outer.starts_with(['+', '#']) {
        return false;
    }
    let mut o = outer.split('/');
    let mut i = inner.split('/');
    loop {
        match (o.next(), i.next()) {
            (Some("#"), _) => return true,
            (_, Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(_), Some("+")) => return false,
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_filters_are_checked() {
        assert!(check_topic_name("fleet/V1/telemetry").is_ok());
        assert_eq!(check_topic_name(""), Err(TopicError::Empty));
        assert!(matches!(
            check_topic_name("a/+"),
            Err(TopicError::WildcardInName(_))
        ));
        assert!(matches!(check_topic_name("a\0"), Err(TopicError::Nul(_))));
        assert!(check_topic_filter("a/+/#").is_ok());
        assert!(check_topic_filter("#").is_ok());
        let e = check_topic_filter("a/b#").unwrap_err();
        assert!(e.to_string().contains("level 2 `b#`"), "{e}");
        assert!(check_topic_filter("a/#/b").is_err());
        assert!(check_topic_filter("a+/b").is_err());
        assert!(matches!(
            check_topic_filter("$share/g/a"),
            Err(TopicError::Shared(_))
        ));
    }

    #[test]
    fn matching() {
        for (f, t, m) in [
            ("a/b", "a/b", true),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("+/+", "a/b", true),
            ("+", "", true),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("a/b", "a/c", false),
        ] {
            assert_eq!(matches(f, t), m, "{f} vs {t}");
        }
    }

    #[test]
    fn covering() {
        for (o, i, c) in [
            ("fleet/#", "fleet/+/alerts", true),
            ("fleet/+/alerts", "fleet/#", false),
            ("a/+", "a/b", true),
            ("a/b", "a/+", false),
            ("#", "a/#", true),
            ("a/#", "a", true),
            ("a/+", "a/+/c", false),
            ("+/+", "a/+", true),
        ] {
            assert_eq!(covers(o, i), c, "{o} ⊇ {i}");
        }
    }

    #[test]
    fn covering_implies_matching() {
        // Small alphabet, many pairs: covers(o, i) && matches(i, t) ⇒ matches(o, t).
        let levels = ["a", "b", "+", "#"];
        let names = ["a", "b"];
        let mut s: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let filter = |r: &mut dyn FnMut() -> u64| {
            let n = 1 + (r() % 3) as usize;
            let mut v: Vec<&str> = Vec::new();
            for k in 0..n {
                let l = levels[(r() % 4) as usize];
                if l == "#" && k + 1 != n {
                    v.push("+");
                } else {
                    v.push(l);
                }
            }
            v.join("/")
        };
        for _ in 0..20_000 {
            let o = filter(&mut rnd);
            let i = filter(&mut rnd);
            let n = 1 + (rnd() % 3) as usize;
            let t: Vec<&str> = (0..n).map(|_| names[(rnd() % 2) as usize]).collect();
            let t = t.join("/");
            if covers(&o, &i) && matches(&i, &t) {
                assert!(
                    matches(&o, &t),
                    "{o} covers {i}, {i} matches {t}, {o} does not"
                );
            }
        }
    }
}
