//! Logins (a password file of argon2id hashes) and per-topic permissions (ACLs).

use crate::config::AclRule;
use crate::topic::{check_topic_filter, covers, matches};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::collections::HashMap;
use std::path::Path;

/// Why a password file or hash could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is wrong.
    #[error("{origin}:{line}: {why}")]
    Line {
        /// The file.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// Hashing failed, or a bad username.
    #[error("{0}")]
    Invalid(String),
}

/// `user:$argon2id$…` lines.
pub struct PasswordFile {
    users: HashMap<String, String>,
}

/// Verified against for unknown users, so timing does not tell which users exist.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1vWDGcE3oAqxNmWHVbLnB2RTHHUdEMn3RMZ6iUr5S0k";

/// An argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Invalid(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Invalid(format!("hashing: {e}")))
}

fn getrandom(buf: &mut [u8]) -> Result<(), AuthError> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|source| AuthError::Io {
            path: "/dev/urandom".into(),
            source,
        })
}

impl PasswordFile {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<PasswordFile, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a password file; errors name `origin:line`.
    pub fn parse(text: &str, origin: &str) -> Result<PasswordFile, AuthError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let err = |why: String| AuthError::Line {
                origin: origin.to_string(),
                line: i + 1,
                why,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or_else(|| {
                err("expected USER:HASH (fleetwatch mqtt passwd writes them)".into())
            })?;
            if user.is_empty() {
                return Err(err("empty username".into()));
            }
            let parsed =
                PasswordHash::new(hash).map_err(|e| err(format!("not a PHC hash: {e}")))?;
            if !parsed.algorithm.as_str().starts_with("argon2") {
                return Err(err(format!(
                    "hash algorithm {} is not argon2",
                    parsed.algorithm
                )));
            }
            if users.insert(user.to_string(), hash.to_string()).is_some() {
                return Err(err(format!("user {user:?} appears twice")));
            }
        }
        Ok(PasswordFile { users })
    }

    /// Whether `password` is `username`'s. CPU-heavy (argon2): run it on a blocking thread.
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        let (hash, known) = match self.users.get(username) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY, false),
        };
        let ok = PasswordHash::new(hash)
            .map(|h| Argon2::default().verify_password(password, &h).is_ok())
            .unwrap_or(false);
        ok && known
    }

    /// Users in the file.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Adds or replaces `username`'s line in the password file at `path` (created if missing),
/// keeping the other lines; written atomically with mode 0600. `Ok(true)`: replaced.
pub fn write_password_file_entry(
    path: &Path,
    username: &str,
    password: &str,
) -> Result<bool, AuthError> {
    if username.is_empty() || username.contains(':') || username.contains(char::is_whitespace) {
        return Err(AuthError::Invalid(format!(
            "username {username:?}: must be non-empty, without ':' or whitespace"
        )));
    }
    if password.is_empty() {
        return Err(AuthError::Invalid("the password is empty".into()));
    }
    let io = |source| AuthError::Io {
        path: path.display().to_string(),
        source,
    };
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let entry = format!("{username}:{}", hash_password(password)?);
    let mut replaced = false;
    let mut lines: Vec<String> = old
        .lines()
        .map(|l| {
            if l.trim().split_once(':').is_some_and(|(u, _)| u == username) {
                replaced = true;
                entry.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    if !replaced {
        lines.push(entry);
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all((lines.join("\n") + "\n").as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(replaced)
}

/// Publish and subscribe permissions (`[[mqtt.acl]]`).
pub struct Acl {
    rules: Vec<AclRule>,
}

fn substitute(filter: &str, username: Option<&str>, client_id: &str) -> Option<String> {
    let safe = |v: &str| !v.is_empty() && !v.contains(['/', '+', '#']);
    let mut f = filter.to_string();
    if f.contains("{username}") {
        let u = username.filter(|u| safe(u))?;
        f = f.replace("{username}", u);
    }
    if f.contains("{clientid}") {
        if !safe(client_id) {
            return None;
        }
        f = f.replace("{clientid}", client_id);
    }
    Some(f)
}

impl Acl {
    /// Checks every filter; errors name `mqtt.acl[i].publish[j]`.
    pub fn new(rules: &[AclRule]) -> Result<Acl, String> {
        for (i, r) in rules.iter().enumerate() {
            for (kind, list) in [("publish", &r.publish), ("subscribe", &r.subscribe)] {
                for (j, f) in list.iter().enumerate() {
                    let plain = f.replace("{username}", "u").replace("{clientid}", "c");
                    if plain.contains(['{', '}']) {
                        return Err(format!(
                            "mqtt.acl[{i}].{kind}[{j}] = {f:?}: only {{username}} and {{clientid}} may be substituted"
                        ));
                    }
                    check_topic_filter(&plain)
                        .map_err(|e| format!("mqtt.acl[{i}].{kind}[{j}]: {e}"))?;
                }
            }
        }
        Ok(Acl {
            rules: rules.to_vec(),
        })
    }

    fn rule(&self, username: Option<&str>) -> Option<&AclRule> {
        self.rules
            .iter()
            .find(|r| r.username == "*" || Some(r.username.as_str()) == username)
    }

    /// Whether the client may publish to `topic`.
    pub fn can_publish(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rule(username).is_some_and(|r| {
            r.publish
                .iter()
                .any(|f| substitute(f, username, client_id).is_some_and(|f| matches(&f, topic)))
        })
    }

    /// Whether the client may subscribe to `filter` (it must lie within an allowed one).
    pub fn can_subscribe(&self, username: Option<&str>, client_id: &str, filter: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rule(username).is_some_and(|r| {
            r.subscribe
                .iter()
                .any(|f| substitute(f, username, client_id).is_some_and(|f| covers(&f, filter)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(user: &str, publish: &[&str], subscribe: &[&str]) -> AclRule {
        AclRule {
            username: user.into(),
            publish: publish.iter().map(|s| s.to_string()).collect(),
            subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn passwords_hash_verify_and_parse_errors_name_the_line() {
        let h = hash_password("s3cret").unwrap();
        let f = PasswordFile::parse(&format!("# cars\n\nalice:{h}\n"), "pw").unwrap();
        assert_eq!(f.len(), 1);
        assert!(f.verify("alice", b"s3cret"));
        assert!(!f.verify("alice", b"wrong"));
        assert!(!f.verify("bob", b"s3cret"));
        let e = PasswordFile::parse(
            "alice:$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA\nnocolon\n",
            "pw",
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().starts_with("pw:1:") || e.to_string().starts_with("pw:2:"),
            "{e}"
        );
        let e = PasswordFile::parse(&format!("a:{h}\na:{h}\n"), "pw")
            .err()
            .unwrap();
        assert!(
            e.to_string().starts_with("pw:2:") && e.to_string().contains("twice"),
            "{e}"
        );
        let e = PasswordFile::parse("a:plain\n", "pw").err().unwrap();
        assert!(e.to_string().starts_with("pw:1: not a PHC"), "{e}");
    }

    #[test]
    fn entries_are_added_and_replaced() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("passwd");
        std::fs::write(&p, "# keep me\n").unwrap();
        assert!(!write_password_file_entry(&p, "car1", "one").unwrap());
        assert!(write_password_file_entry(&p, "car1", "two").unwrap());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("# keep me\n"));
        let f = PasswordFile::parse(&text, "p").unwrap();
        assert_eq!(f.len(), 1);
        assert!(f.verify("car1", b"two"));
        assert!(write_password_file_entry(&p, "a b", "x").is_err());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn acl_first_matching_rule_decides_and_placeholders_never_widen() {
        let acl = Acl::new(&[
            rule("admin", &["#"], &["#"]),
            rule(
                "*",
                &["fleet/{username}/#", "cars/{clientid}/up"],
                &["fleet/{username}/alerts"],
            ),
        ])
        .unwrap();
        assert!(acl.can_publish(Some("admin"), "x", "any/thing"));
        assert!(acl.can_publish(Some("V1"), "c", "fleet/V1/telemetry"));
        assert!(!acl.can_publish(Some("V1"), "c", "fleet/V2/telemetry"));
        assert!(acl.can_publish(None, "car-9", "cars/car-9/up"));
        assert!(
            !acl.can_publish(None, "c", "fleet//telemetry"),
            "anonymous has no {{username}}"
        );
        assert!(
            !acl.can_publish(Some("+"), "c", "fleet/V2/x"),
            "a wildcard username matches nothing"
        );
        assert!(!acl.can_publish(None, "#", "cars/x/up"));
        assert!(acl.can_subscribe(Some("V1"), "c", "fleet/V1/alerts"));
        assert!(!acl.can_subscribe(Some("V1"), "c", "fleet/+/alerts"));
        assert!(Acl::new(&[]).unwrap().can_publish(None, "c", "x"));
        let only_admin = Acl::new(&[rule("admin", &["#"], &[])]).unwrap();
        assert!(
            !only_admin.can_publish(Some("bob"), "c", "x"),
            "no rule matches: denied"
        );
        let e = Acl::new(&[rule("*", &["a/{vin}"], &[])]).err().unwrap();
        assert!(e.starts_with("mqtt.acl[0].publish[0]"), "{e}");
        let e = Acl::new(&[rule("*", &[], &["a/#/b"])]).err().unwrap();
        assert!(e.starts_with("mqtt.acl[0].subscribe[0]"), "{e}");
    }
}
