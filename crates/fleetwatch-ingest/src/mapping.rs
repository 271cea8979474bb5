//! Publish and subscribe mapping: MQTT topics ↔ log topics and record keys.
//!
//! A pattern is `/`-separated levels, each a literal, a capture `{name}` (one level), `+`
//! (one level, not captured) or a final `#` (the remaining levels, possibly none). Publish
//! rules are tried in order and the first match wins; its key template is rendered from the
//! captures and the client's `{clientid}` / `{username}`. A subscribe rule's single capture
//! stands for the record key, in both directions: a subscription filter selects keys, and a
//! record's key renders the MQTT topic it is delivered on.

use crate::config::{MqttConfig, PublishRule, SubscribeRule};
use fleetwatch_core::validate_topic_name;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(String),
    Capture(String),
    Plus,
    Hash,
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    levels: Vec<Level>,
}

impl Pattern {
    /// Parses `text`; errors say what is wrong with which level.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("a pattern may not be empty".into());
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let level = if *p == "+" {
                Level::Plus
            } else if *p == "#" {
                if i + 1 != parts.len() {
                    return Err(format!("{text:?}: `#` must be the last level"));
                }
                Level::Hash
            } else if let Some(name) = p.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(format!(
                        "{text:?}: level {} `{p}` is not a capture name (letters, digits, _ and -)",
                        i + 1
                    ));
                }
                if levels
                    .iter()
                    .any(|l| matches!(l, Level::Capture(n) if n == name))
                {
                    return Err(format!("{text:?}: `{{{name}}}` appears twice"));
                }
                Level::Capture(name.to_string())
            } else if p.contains(['+', '#', '{', '}']) {
                return Err(format!(
                    "{text:?}: level {} `{p}` mixes wildcard or brace characters with text",
                    i + 1
                ));
            } else {
                Level::Literal(p.to_string())
            };
            levels.push(level);
        }
        Ok(Pattern {
            text: text.to_string(),
            levels,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn captures(&self) -> impl Iterator<Item = &str> {
        self.levels.iter().filter_map(|l| match l {
            Level::Capture(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Matches an MQTT topic name; on a match, the captures in pattern order.
    pub fn matches<'t>(&self, topic: &'t str) -> Option<Vec<(&str, &'t str)>> {
        let mut caps = Vec::new();
        let mut parts = topic.split('/');
        for level in &self.levels {
            match level {
                Level::Hash => return Some(caps),
                _ => {
                    let part = parts.next()?;
                    match level {
                        Level::Literal(l) if l == part => {}
                        Level::Literal(_) => return None,
                        Level::Capture(n) => caps.push((n.as_str(), part)),
                        Level::Plus | Level::Hash => {}
                    }
                }
            }
        }
        parts.next().is_none().then_some(caps)
    }
}

/// A key template: text with `{name}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Piece>);

impl Template {
    fn parse(text: &str, known: &[&str]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("key {text:?}: `{{` without `}}`"))?;
            let name = &rest[open + 1..open + close];
            if !known.contains(&name) {
                return Err(format!(
                    "key {text:?}: `{{{name}}}` is neither a capture of the pattern nor clientid/username (known: {})",
                    known.join(", ")
                ));
            }
            pieces.push(Piece::Var(name.to_string()));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("key {text:?}: `}}` without `{{`"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template(pieces))
    }

    fn render(&self, caps: &[(&str, &str)], client: &ClientIdentity<'_>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(match v.as_str() {
                    "clientid" => client.client_id,
                    "username" => client.username.unwrap_or(""),
                    name => caps
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| *v)
                        .unwrap_or(""),
                }),
            }
        }
        out
    }
}

/// Who published, for key templates and headers.
#[derive(Debug, Clone, Copy)]
pub struct ClientIdentity<'a> {
    /// The client id.
    pub client_id: &'a str,
    /// The username it logged in with.
    pub username: Option<&'a str>,
}

#[derive(Debug, Clone)]
struct PubRule {
    pattern: Pattern,
    topic: String,
    key: Option<Template>,
}

/// Where one publish goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'m> {
    /// The log topic.
    pub topic: &'m str,
    /// The record key.
    pub key: Option<String>,
}

/// One subscribe rule, parsed.
#[derive(Debug, Clone)]
pub struct SubRule {
    pattern: Pattern,
    /// The log topic.
    pub topic: String,
}

/// What one subscription filter selects of one subscribe rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySelect {
    /// Every record.
    All,
    /// Records with exactly this key.
    Key(String),
}

impl SubRule {
    /// Which records of this rule's topic the MQTT filter `filter` selects, if any: the
    /// filter and the pattern must be able to name the same topics.
    pub fn select(&self, filter: &str) -> Option<KeySelect> {
        let mut key = None;
        let parts: Vec<&str> = filter.split('/').collect();
        for (i, level) in self.pattern.levels.iter().enumerate() {
            let part = parts.get(i)?;
            if *part == "#" {
                return Some(key.map(KeySelect::Key).unwrap_or(KeySelect::All));
            }
            match level {
                Level::Literal(l) => {
                    if *part != "+" && part != l {
                        return None;
                    }
                }
                Level::Capture(_) => {
                    if *part != "+" {
                        key = Some(part.to_string());
                    }
                }
                // Subscribe patterns have literals and one capture only.
                Level::Plus | Level::Hash => return None,
            }
        }
        if parts.len() != self.pattern.levels.len() {
            return None;
        }
        Some(key.map(KeySelect::Key).unwrap_or(KeySelect::All))
    }

    /// The MQTT topic a record with `key` is delivered on (`None`: the pattern has a key
    /// level and the record has no usable key).
    pub fn topic_for(&self, key: Option<&[u8]>) -> Option<String> {
        let mut out = String::new();
        for (i, level) in self.pattern.levels.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            match level {
                Level::Literal(l) => out.push_str(l),
                Level::Capture(_) => {
                    let k = std::str::from_utf8(key?).ok()?;
                    if k.is_empty() || k.contains(['/', '+', '#']) {
                        return None;
                    }
                    out.push_str(k);
                }
                Level::Plus | Level::Hash => return None,
            }
        }
        Some(out)
    }
}

/// What to do with a publish no rule maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmapped {
    /// Refuse it.
    Reject,
    /// Append it to this topic, keyed by its MQTT topic.
    Topic(String),
}

/// The whole mapping, parsed and checked.
#[derive(Debug, Clone)]
pub struct Mapping {
    publish: Vec<PubRule>,
    unmapped: Unmapped,
    subscribe: Vec<SubRule>,
}

impl Mapping {
    /// Parses `[mqtt] publish_map`, `unmapped` and `subscribe_map`; errors name the rule.
    pub fn new(config: &MqttConfig) -> Result<Mapping, String> {
        let publish = config
            .publish_map
            .iter()
            .enumerate()
            .map(|(i, r)| Self::pub_rule(r).map_err(|e| format!("mqtt.publish_map[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let unmapped = match config.unmapped.as_str() {
            "reject" => Unmapped::Reject,
            t => {
                validate_topic_name(t).map_err(|e| format!("mqtt.unmapped: {e}"))?;
                Unmapped::Topic(t.to_string())
            }
        };
        let subscribe = config
            .subscribe_map
            .iter()
            .enumerate()
            .map(|(i, r)| Self::sub_rule(r).map_err(|e| format!("mqtt.subscribe_map[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Mapping {
            publish,
            unmapped,
            subscribe,
        })
    }

    fn pub_rule(r: &PublishRule) -> Result<PubRule, String> {
        let pattern = Pattern::parse(&r.pattern)?;
        validate_topic_name(&r.topic).map_err(|e| format!("topic: {e}"))?;
        let mut known: Vec<&str> = pattern.captures().collect();
        known.extend(["clientid", "username"]);
        let key = r
            .key
            .as_deref()
            .map(|k| Template::parse(k, &known))
            .transpose()?;
        Ok(PubRule {
            topic: r.topic.clone(),
            pattern,
            key,
        })
    }

    fn sub_rule(r: &SubscribeRule) -> Result<SubRule, String> {
        let pattern = Pattern::parse(&r.pattern)?;
        validate_topic_name(&r.topic).map_err(|e| format!("topic: {e}"))?;
        let mut key_level = None;
        for (i, l) in pattern.levels.iter().enumerate() {
            match l {
                Level::Literal(_) => {}
                Level::Capture(_) if key_level.is_none() => key_level = Some(i),
                Level::Capture(_) => {
                    return Err(format!(
                        "{:?}: a subscribe pattern has at most one capture (the record key)",
                        r.pattern
                    ));
                }
                Level::Plus | Level::Hash => {
                    return Err(format!(
                        "{:?}: a subscribe pattern has literal levels and one `{{key}}` capture, no wildcards",
                        r.pattern
                    ));
                }
            }
        }
        Ok(SubRule {
            pattern,
            topic: r.topic.clone(),
        })
    }

    /// Routes a publish to `topic` by `client`; `None`: unmapped and rejected.
    pub fn route(&self, topic: &str, client: &ClientIdentity<'_>) -> Option<Route<'_>> {
        for rule in &self.publish {
            if let Some(caps) = rule.pattern.matches(topic) {
                return Some(Route {
                    topic: &rule.topic,
                    key: rule.key.as_ref().map(|t| t.render(&caps, client)),
                });
            }
        }
        match &self.unmapped {
            Unmapped::Reject => None,
            Unmapped::Topic(t) => Some(Route {
                topic: t,
                key: Some(topic.to_string()),
            }),
        }
    }

    /// The subscribe rules.
    pub fn subscribe_rules(&self) -> &[SubRule] {
        &self.subscribe
    }

    /// Every log topic the mapping writes or reads (to create at start-up).
    pub fn topics(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self.publish.iter().map(|r| r.topic.as_str()).collect();
        if let Unmapped::Topic(u) = &self.unmapped {
            t.push(u);
        }
        t.extend(self.subscribe.iter().map(|r| r.topic.as_str()));
        t.sort_unstable();
        t.dedup();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(publish: &[(&str, &str, Option<&str>)], unmapped: &str) -> MqttConfig {
        MqttConfig {
            publish_map: publish
                .iter()
                .map(|(p, t, k)| PublishRule {
                    pattern: p.to_string(),
                    topic: t.to_string(),
                    key: k.map(str::to_string),
                    partitions: None,
                })
                .collect(),
            unmapped: unmapped.into(),
            subscribe_map: vec![SubscribeRule {
                pattern: "fleet/{vin}/alerts".into(),
                topic: "alerts".into(),
            }],
            ..MqttConfig::default()
        }
    }

    const ME: ClientIdentity<'static> = ClientIdentity {
        client_id: "car-7",
        username: Some("alice"),
    };

    #[test]
    fn first_matching_rule_wins_and_renders_the_key() {
        let m = Mapping::new(&config(
            &[
                ("fleet/{vin}/telemetry", "telemetry.raw", Some("{vin}")),
                ("fleet/+/#", "fleet.other", Some("{clientid}:{username}")),
            ],
            "reject",
        ))
        .unwrap();
        assert_eq!(
            m.route("fleet/V1/telemetry", &ME),
            Some(Route {
                topic: "telemetry.raw",
                key: Some("V1".into())
            })
        );
        assert_eq!(
            m.route("fleet/V1/telemetry/extra", &ME),
            Some(Route {
                topic: "fleet.other",
                key: Some("car-7:alice".into())
            })
        );
        assert_eq!(m.route("fleet/V1", &ME).unwrap().topic, "fleet.other");
        assert_eq!(m.route("other/V1/telemetry", &ME), None);
        assert_eq!(m.route("fleet", &ME), None, "+ needs a level");
    }

    #[test]
    fn unmapped_goes_to_its_topic_keyed_by_the_mqtt_topic() {
        let m = Mapping::new(&config(&[], "mqtt.rest")).unwrap();
        assert_eq!(
            m.route("a/b", &ME),
            Some(Route {
                topic: "mqtt.rest",
                key: Some("a/b".into())
            })
        );
        assert_eq!(m.topics(), vec!["alerts", "mqtt.rest"]);
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule() {
        let e = Mapping::new(&config(&[("a/#/b", "t", None)], "reject")).unwrap_err();
        assert!(
            e.starts_with("mqtt.publish_map[0]:") && e.contains("last level"),
            "{e}"
        );
        let e = Mapping::new(&config(&[("a/{x}", "t", Some("{y}"))], "reject")).unwrap_err();
        assert!(e.contains("`{y}` is neither"), "{e}");
        let e = Mapping::new(&config(&[("a/b{x}", "t", None)], "reject")).unwrap_err();
        assert!(e.contains("mixes"), "{e}");
        let e = Mapping::new(&config(&[("a", "bad topic!", None)], "reject")).unwrap_err();
        assert!(e.contains("topic"), "{e}");
        let e = Mapping::new(&config(&[], "")).unwrap_err();
        assert!(e.starts_with("mqtt.unmapped"), "{e}");
        let mut c = config(&[], "reject");
        c.subscribe_map[0].pattern = "fleet/+/alerts".into();
        let e = Mapping::new(&c).unwrap_err();
        assert!(
            e.starts_with("mqtt.subscribe_map[0]") && e.contains("no wildcards"),
            "{e}"
        );
    }

    #[test]
    fn subscription_filters_select_keys() {
        let m = Mapping::new(&config(&[], "reject")).unwrap();
        let r = &m.subscribe_rules()[0];
        assert_eq!(
            r.select("fleet/V1/alerts"),
            Some(KeySelect::Key("V1".into()))
        );
        assert_eq!(r.select("fleet/+/alerts"), Some(KeySelect::All));
        assert_eq!(r.select("fleet/#"), Some(KeySelect::All));
        assert_eq!(r.select("#"), Some(KeySelect::All));
        assert_eq!(r.select("fleet/V1/#"), Some(KeySelect::Key("V1".into())));
        assert_eq!(r.select("fleet/V1/other"), None);
        assert_eq!(r.select("fleet/V1"), None);
        assert_eq!(r.select("fleet/V1/alerts/x"), None);
        assert_eq!(r.topic_for(Some(b"V9")).as_deref(), Some("fleet/V9/alerts"));
        assert_eq!(r.topic_for(None), None);
        assert_eq!(
            r.topic_for(Some(b"a/b")),
            None,
            "a key with / cannot be a level"
        );
    }
}
