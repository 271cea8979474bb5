//! Logins and permissions: the password file (`[mqtt] password_file`, argon2 hashes in PHC
//! form, written by `fleetwatch mqtt passwd`) and the publish/subscribe ACL
//! (`[[mqtt.acl]]`).
//!
//! The password file has one `username:$argon2id$v=19$m=…,t=…,p=…$salt$hash` line per
//! user; blank lines and lines starting with `#` are ignored.

use crate::config::AclRule;
use crate::topic::{check_topic_filter, check_topic_name, covers, matches};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, Salt, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What went wrong hashing a password or reading or writing a password file.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The system's random number generator failed (for a salt).
    #[error("generating a random salt: {0}")]
    Random(String),
    /// argon2 refused to hash.
    #[error("hashing the password: {0}")]
    Hash(argon2::password_hash::Error),
    /// An empty password.
    #[error("the password is empty")]
    EmptyPassword,
    /// A username the password file cannot hold.
    #[error("username {username:?}: {reason}")]
    BadUsername {
        /// The username.
        username: String,
        /// Why not.
        reason: &'static str,
    },
    /// The password file could not be read.
    #[error("reading password file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not a `source()`: one line under `{:#}`).
        error: io::Error,
    },
    /// A line of the password file is wrong.
    #[error("{origin}:{line}: {reason}")]
    Parse {
        /// The file (or another name for the text).
        origin: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The password file could not be written.
    #[error("writing password file {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not a `source()`).
        error: io::Error,
    },
}

/// A well-formed argon2id hash with the default parameters (random bytes: no known password
/// has it). An unknown user is verified against it, so that answering takes as long as for
/// a known one.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$8I4tHCsJ5yWvQOQrmLKqjA$jTgvqPFa9AVdQeSMmcBw4L4gzfZaXY+GvJvoHMUFkTk";

/// Hashes `password` with argon2id (default parameters, a random 16-byte salt) into a PHC
/// string, `$argon2id$v=19$m=19456,t=2,p=1$…$…`. CPU-heavy (tens of milliseconds).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut bytes = [0u8; Salt::RECOMMENDED_LENGTH];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| AuthError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&bytes).map_err(AuthError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AuthError::Hash)
}

/// Why `username` cannot be in a password file, if it cannot.
fn username_problem(username: &str) -> Option<&'static str> {
    if username.is_empty() {
        Some("a username may not be empty")
    } else if username.contains(':') {
        Some("a username may not contain `:`")
    } else if username
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        Some("a username may not contain whitespace or control characters")
    } else if username.starts_with('#') {
        Some("a username may not start with `#` (the line would be a comment)")
    } else if username == "*" {
        Some("`*` stands for any user in [[mqtt.acl]] and cannot be a username")
    } else {
        None
    }
}

/// Why `phc` is not an argon2 hash the proxy can verify against, if it is not.
fn hash_problem(phc: &str) -> Option<String> {
    let h = match PasswordHash::new(phc) {
        Ok(h) => h,
        Err(e) => return Some(format!("the hash is not a PHC string ($argon2id$…): {e}")),
    };
    if Algorithm::try_from(h.algorithm).is_err() {
        return Some(format!(
            "the hash's algorithm is `{}`, not argon2id (or argon2i, argon2d)",
            h.algorithm
        ));
    }
    if let Some(v) = h.version
        && Version::try_from(v).is_err()
    {
        return Some(format!(
            "the hash's argon2 version {v} is unknown (19 or 16)"
        ));
    }
    if let Err(e) = Params::try_from(&h) {
        return Some(format!("the hash's argon2 parameters are invalid: {e}"));
    }
    if h.salt.is_none() || h.hash.is_none() {
        return Some("the hash has no salt or no hash value".into());
    }
    None
}

/// The users who may log in, and their password hashes.
#[derive(Clone, Default)]
pub struct PasswordFile {
    /// Username → PHC hash string (checked when loaded).
    users: HashMap<String, String>,
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the hashes.
        f.debug_struct("PasswordFile")
            .field("users", &self.users.len())
            .finish()
    }
}

impl PasswordFile {
    /// Reads and parses the file at `path`; errors name `path:line`.
    pub fn load(path: &Path) -> Result<PasswordFile, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|error| AuthError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        PasswordFile::parse(&text, &path.display().to_string())
    }

    /// Parses password file text; errors name `origin:line` (`origin` is usually the file's
    /// path).
    pub fn parse(text: &str, origin: &str) -> Result<PasswordFile, AuthError> {
        let mut users: HashMap<String, (String, usize)> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |reason: String| AuthError::Parse {
                origin: origin.to_string(),
                line,
                reason,
            };
            let Some((username, hash)) = parse_line(raw) else {
                continue;
            };
            let Some(hash) = hash else {
                return Err(err(
                    "expected `username:$argon2id$…`, found no `:`".to_string()
                ));
            };
            if let Some(reason) = username_problem(username) {
                return Err(err(reason.to_string()));
            }
            if let Some(reason) = hash_problem(hash) {
                return Err(err(format!("user {username:?}: {reason}")));
            }
            if let Some((_, first)) = users.get(username) {
                return Err(err(format!(
                    "user {username:?} appears twice (first on line {first})"
                )));
            }
            users.insert(username.to_string(), (hash.to_string(), line));
        }
        Ok(PasswordFile {
            users: users.into_iter().map(|(u, (h, _))| (u, h)).collect(),
        })
    }

    /// Whether `username` exists and `password` is its password. An unknown user costs one
    /// argon2 verification too (against a dummy hash), so the time taken does not tell
    /// which users exist.
    ///
    /// CPU-heavy (tens of milliseconds, with memory to match): async callers run it on a
    /// blocking thread (`tokio::task::spawn_blocking`).
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        let stored = self.users.get(username);
        let phc = stored.map_or(DUMMY_HASH, String::as_str);
        let ok = PasswordHash::new(phc)
            .is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok());
        ok && stored.is_some()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// One password file line: `None` for a blank line or a comment, else the username and,
/// if there is a `:`, the hash (both trimmed of surrounding whitespace at the line's ends).
fn parse_line(raw: &str) -> Option<(&str, Option<&str>)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(match line.split_once(':') {
        Some((u, h)) => (u, Some(h)),
        None => (line, None),
    })
}

/// What [`write_password_file_entry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryWritten {
    /// The user was new.
    Added,
    /// The user's line was replaced.
    Replaced,
}

/// Sets `username`'s password in the password file at `path`: replaces the user's line or
/// adds one at the end, keeping every other line (comments included). The file is created
/// if missing, and written through a temporary file and a rename (readers see the old file
/// or the new one), with mode 0600. An existing file must parse: a broken one is not
/// rewritten.
pub fn write_password_file_entry(
    path: &Path,
    username: &str,
    password: &str,
) -> Result<EntryWritten, AuthError> {
    if let Some(reason) = username_problem(username) {
        return Err(AuthError::BadUsername {
            username: username.to_string(),
            reason,
        });
    }
    if password.is_empty() {
        return Err(AuthError::EmptyPassword);
    }
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(AuthError::Read {
                path: path.to_path_buf(),
                error,
            });
        }
    };
    PasswordFile::parse(&old, &path.display().to_string())?;
    let entry = format!("{username}:{}", hash_password(password)?);
    let mut out = String::with_capacity(old.len() + entry.len() + 1);
    let mut written = EntryWritten::Added;
    for raw in old.lines() {
        if matches!(parse_line(raw), Some((u, _)) if u == username) {
            out.push_str(&entry);
            written = EntryWritten::Replaced;
        } else {
            out.push_str(raw);
        }
        out.push('\n');
    }
    if written == EntryWritten::Added {
        out.push_str(&entry);
        out.push('\n');
    }
    write_private_atomic(path, out.as_bytes()).map_err(|error| AuthError::Write {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(written)
}

/// Writes `data` to `path` with mode 0600: a temporary file beside it, fsync, rename, fsync
/// of the directory.
fn write_private_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    // A leftover of this process id from a crash: its mode may not be 0600.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // Whatever the umask.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// One piece of an ACL filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Username,
    ClientId,
}

/// An ACL filter with its `{username}` / `{clientid}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AclFilter(Vec<Piece>);

impl AclFilter {
    fn parse(text: &str) -> Result<AclFilter, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("{text:?}: `}}` without `{{`"));
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("{text:?}: `{{` without `}}`"))?;
            pieces.push(match &rest[open + 1..open + close] {
                "username" => Piece::Username,
                "clientid" => Piece::ClientId,
                other => {
                    return Err(format!(
                        "{text:?}: `{{{other}}}` is not a placeholder (only {{username}} and {{clientid}})"
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        // Two placeholders in one level are ambiguous (user `a` with client `bc` and user
        // `ab` with client `c` would share `{username}{clientid}`).
        let mut in_level = 0;
        for p in &pieces {
            match p {
                Piece::Text(t) if t.contains('/') => in_level = 0,
                Piece::Text(_) => {}
                Piece::Username | Piece::ClientId => in_level += 1,
            }
            if in_level > 1 {
                return Err(format!(
                    "{text:?}: at most one placeholder per level (two in one level are ambiguous)"
                ));
            }
        }
        let f = AclFilter(pieces);
        check_topic_filter(&f.render_with("x", "x")).map_err(|e| format!("{text:?}: {e}"))?;
        Ok(f)
    }

    fn render_with(&self, username: &str, client_id: &str) -> String {
        let mut out = String::new();
        for p in &self.0 {
            out.push_str(match p {
                Piece::Text(t) => t,
                Piece::Username => username,
                Piece::ClientId => client_id,
            });
        }
        out
    }

    /// The filter for this client; `None`: it names nothing for this client (a placeholder
    /// whose value is missing or could widen the filter).
    fn render(&self, username: Option<&str>, client_id: &str) -> Option<Cow<'_, str>> {
        if let [Piece::Text(t)] = self.0.as_slice() {
            return Some(Cow::Borrowed(t));
        }
        for (i, p) in self.0.iter().enumerate() {
            let value = match p {
                Piece::Text(_) => continue,
                Piece::Username => username?,
                Piece::ClientId => client_id,
            };
            // A value that is empty or holds `/`, a wildcard or NUL would change the
            // filter's shape; one that starts the filter with `$` would reach into the
            // server's `$…` topics.
            if value.is_empty()
                || value.contains(['/', '+', '#', '\0'])
                || (i == 0 && value.starts_with('$'))
            {
                return None;
            }
        }
        Some(Cow::Owned(
            self.render_with(username.unwrap_or(""), client_id),
        ))
    }
}

/// One `[[mqtt.acl]]` rule, parsed.
#[derive(Debug, Clone)]
struct Rule {
    /// `None`: any user, anonymous ones included.
    username: Option<String>,
    publish: Vec<AclFilter>,
    subscribe: Vec<AclFilter>,
}

/// Publish and subscribe permissions (`[[mqtt.acl]]`). Without rules every client may do
/// everything; otherwise the first rule whose `username` is `*` or the client's username
/// decides (anonymous clients match only `*`), and no matching rule means denied.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    rules: Vec<Rule>,
}

impl Acl {
    /// Parses and checks the rules: filters must be valid topic filters using only the
    /// `{username}` and `{clientid}` placeholders (at most one per level); errors name the
    /// key, `mqtt.acl[i].publish[j]`.
    pub fn new(rules: &[AclRule]) -> Result<Acl, String> {
        let parse = |i: usize, key: &str, filters: &[String]| {
            filters
                .iter()
                .enumerate()
                .map(|(j, f)| {
                    AclFilter::parse(f).map_err(|e| format!("mqtt.acl[{i}].{key}[{j}]: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let username = match r.username.as_str() {
                    "*" => None,
                    "" => {
                        return Err(format!(
                            "mqtt.acl[{i}].username is empty: name a user, or \"*\" for any"
                        ));
                    }
                    u => Some(u.to_string()),
                };
                Ok(Rule {
                    username,
                    publish: parse(i, "publish", &r.publish)?,
                    subscribe: parse(i, "subscribe", &r.subscribe)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Acl { rules })
    }

    /// The rule that decides for `username`.
    fn rule_for(&self, username: Option<&str>) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.username.is_none() || r.username.as_deref() == username)
    }

    /// Whether the client may publish to the topic name `topic` (never for an invalid
    /// topic name).
    pub fn can_publish(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        if check_topic_name(topic).is_err() {
            return false;
        }
        if self.rules.is_empty() {
            return true;
        }
        self.rule_for(username).is_some_and(|r| {
            r.publish.iter().any(|f| {
                f.render(username, client_id)
                    .is_some_and(|f| matches(&f, topic))
            })
        })
    }

    /// Whether the client may subscribe to the topic filter `filter`: it must lie within
    /// one of the rule's filters (never for an invalid filter).
    pub fn can_subscribe(&self, username: Option<&str>, client_id: &str, filter: &str) -> bool {
        if check_topic_filter(filter).is_err() {
            return false;
        }
        if self.rules.is_empty() {
            return true;
        }
        self.rule_for(username).is_some_and(|r| {
            r.subscribe.iter().any(|f| {
                f.render(username, client_id)
                    .is_some_and(|f| covers(&f, filter))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_is_valid_with_default_parameters() {
        assert_eq!(hash_problem(DUMMY_HASH), None);
        let h = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(h.algorithm, argon2::ARGON2ID_IDENT);
        let (p, d) = (Params::try_from(&h).unwrap(), Params::default());
        assert_eq!(
            (p.m_cost(), p.t_cost(), p.p_cost(), p.output_len()),
            (
                d.m_cost(),
                d.t_cost(),
                d.p_cost(),
                Some(Params::DEFAULT_OUTPUT_LEN)
            )
        );
    }

    /// argon2 is slow in debug builds: this test and the write test are the only ones that
    /// run it, a few times each.
    #[test]
    fn hash_then_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let f = PasswordFile::parse(&format!("# users\n\nalice:{h}\n"), "test").unwrap();
        assert_eq!(f.len(), 1);
        assert!(!f.is_empty());
        assert!(f.verify("alice", b"s3cret"));
        assert!(!f.verify("alice", b"s3cret "));
        assert!(!f.verify("bob", b"s3cret"), "unknown user");
        assert!(!format!("{f:?}").contains("argon2"), "Debug shows no hash");
    }

    #[test]
    fn parse_errors_name_the_line() {
        let h = DUMMY_HASH;
        let cases: &[(String, usize, &str)] = &[
            (format!("# c\nalice{h}\n"), 2, "no `:`"),
            (format!(":{h}\n"), 1, "may not be empty"),
            (format!("a b:{h}\n"), 1, "whitespace"),
            (format!("alice:{h}\n\nbob:{h}\nalice:{h}\n"), 4, "first on line 1"),
            ("alice:secret\n".into(), 1, "not a PHC string"),
            ("alice:\n".into(), 1, "not a PHC string"),
            (
                "alice:$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n".into(),
                1,
                "not argon2id",
            ),
            (
                "alice:$argon2id$v=19$m=1,t=2,p=1$8I4tHCsJ5yWvQOQrmLKqjA$jTgvqPFa9AVdQeSMmcBw4L4gzfZaXY+GvJvoHMUFkTk\n".into(),
                1,
                "parameters",
            ),
            (
                "alice:$argon2id$v=19$m=19456,t=2,p=1$8I4tHCsJ5yWvQOQrmLKqjA\n".into(),
                1,
                "no salt or no hash",
            ),
        ];
        for (text, line, want) in cases {
            let e = PasswordFile::parse(text, "/etc/fw/passwd").unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("/etc/fw/passwd:{line}: ")) && msg.contains(want),
                "{text:?}: {msg}"
            );
        }
        let ok = PasswordFile::parse(&format!("  # x\n\r\n alice:{h} \r\nbob:{h}"), "t").unwrap();
        assert_eq!(ok.len(), 2);
        let e = PasswordFile::load(Path::new("/nonexistent/passwd")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/passwd"), "{e}");
    }

    #[test]
    fn write_adds_and_replaces_keeping_other_lines() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, format!("# fleet users\nbob:{DUMMY_HASH}\n\n# end\n")).unwrap();
        assert_eq!(
            write_password_file_entry(&path, "alice", "one").unwrap(),
            EntryWritten::Added
        );
        assert_eq!(
            write_password_file_entry(&path, "alice", "two").unwrap(),
            EntryWritten::Replaced
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..4],
            ["# fleet users", &format!("bob:{DUMMY_HASH}"), "", "# end"]
        );
        assert!(lines[4].starts_with("alice:$argon2id$"), "{text}");
        assert_eq!(lines.len(), 5, "{text}");
        let f = PasswordFile::load(&path).unwrap();
        assert_eq!(f.len(), 2);
        assert!(f.verify("alice", b"two"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );

        // Refused before any hashing.
        for bad in ["", "a:b", "a b", "#a", "*"] {
            let e = write_password_file_entry(&path, bad, "pw").unwrap_err();
            assert!(matches!(e, AuthError::BadUsername { .. }), "{bad:?}: {e}");
        }
        let e = write_password_file_entry(&path, "carol", "").unwrap_err();
        assert!(matches!(e, AuthError::EmptyPassword), "{e}");
        std::fs::write(&path, "bob\n").unwrap();
        let e = write_password_file_entry(&path, "carol", "pw").unwrap_err();
        assert!(e.to_string().contains("passwd:1: "), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "bob\n");
    }

    fn rule(username: &str, publish: &[&str], subscribe: &[&str]) -> AclRule {
        AclRule {
            username: username.into(),
            publish: publish.iter().map(|s| s.to_string()).collect(),
            subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn no_rules_allow_everything_valid() {
        let acl = Acl::new(&[]).unwrap();
        assert!(acl.can_publish(None, "c", "a/b"));
        assert!(acl.can_subscribe(None, "c", "#"));
        assert!(acl.can_subscribe(Some("u"), "c", "$SYS/#"));
        assert!(!acl.can_publish(None, "c", "a/+"), "not a topic name");
        assert!(!acl.can_subscribe(None, "c", "a/#/b"), "not a filter");
        assert!(!acl.can_subscribe(None, "c", "$share/g/a"));
    }

    #[test]
    fn first_matching_rule_decides() {
        let acl = Acl::new(&[
            rule("admin", &["#"], &["#"]),
            rule("alice", &["fleet/alice/#"], &["fleet/+/alerts"]),
            rule("*", &["public/#"], &["public/#"]),
            rule("bob", &["bob/#"], &["bob/#"]),
        ])
        .unwrap();
        assert!(acl.can_publish(Some("admin"), "c", "anything/at/all"));
        assert!(acl.can_subscribe(Some("admin"), "c", "#"));
        assert!(acl.can_publish(Some("alice"), "c", "fleet/alice/t"));
        assert!(
            !acl.can_publish(Some("alice"), "c", "public/x"),
            "rule 1 decided"
        );
        assert!(acl.can_subscribe(Some("alice"), "c", "fleet/V1/alerts"));
        assert!(acl.can_subscribe(Some("alice"), "c", "fleet/+/alerts"));
        assert!(!acl.can_subscribe(Some("alice"), "c", "fleet/#"), "wider");
        assert!(!acl.can_subscribe(Some("alice"), "c", "fleet/V1/alerts/#"));
        assert!(
            acl.can_publish(Some("bob"), "c", "public/x"),
            "`*` comes first"
        );
        assert!(!acl.can_publish(Some("bob"), "c", "bob/x"));
        assert!(
            acl.can_publish(None, "c", "public/x"),
            "anonymous matches `*`"
        );
        assert!(!acl.can_subscribe(None, "c", "#"));

        let named_only = Acl::new(&[rule("alice", &["#"], &["#"])]).unwrap();
        assert!(!named_only.can_publish(None, "c", "a"), "no rule: denied");
        assert!(!named_only.can_publish(Some("bob"), "c", "a"));
        assert!(!named_only.can_subscribe(Some(""), "c", "a"));
    }

    #[test]
    fn placeholders_are_substituted() {
        let acl = Acl::new(&[rule(
            "*",
            &[
                "users/{username}/#",
                "cars/{clientid}/telemetry",
                "x/car-{clientid}",
            ],
            &["users/{username}/+/in", "cars/{clientid}/#"],
        )])
        .unwrap();
        assert!(acl.can_publish(Some("alice"), "V1", "users/alice/a/b"));
        assert!(!acl.can_publish(Some("alice"), "V1", "users/bob/a"));
        assert!(acl.can_publish(Some("alice"), "V1", "cars/V1/telemetry"));
        assert!(acl.can_publish(None, "V1", "cars/V1/telemetry"));
        assert!(!acl.can_publish(None, "V1", "cars/V2/telemetry"));
        assert!(acl.can_publish(None, "V1", "x/car-V1"));
        assert!(acl.can_subscribe(Some("alice"), "V1", "users/alice/+/in"));
        assert!(acl.can_subscribe(Some("alice"), "V1", "users/alice/q/in"));
        assert!(!acl.can_subscribe(Some("alice"), "V1", "users/alice/#"));
        assert!(acl.can_subscribe(Some("alice"), "V1", "cars/V1/#"));
        assert!(!acl.can_subscribe(Some("alice"), "V1", "cars/+/#"));
        // Substituted once: a username that looks like a placeholder stays text.
        assert!(acl.can_publish(Some("{clientid}"), "V1", "users/{clientid}/a"));
        assert!(!acl.can_publish(Some("{clientid}"), "V1", "users/V1/a"));
    }

    #[test]
    fn placeholder_values_never_widen_a_filter() {
        let acl = Acl::new(&[rule(
            "*",
            &["users/{username}/in", "{clientid}/out"],
            &["users/{username}/in", "{clientid}/#"],
        )])
        .unwrap();
        // Anonymous: `{username}` matches nothing (not `users//in`).
        assert!(!acl.can_publish(None, "c", "users//in"));
        assert!(!acl.can_subscribe(None, "c", "users//in"));
        for evil in ["+", "#", "a/b", "a+", "a#", "", "x\0"] {
            let u = Some(evil);
            for topic in ["users/a/in", "users/a/b/in", "users//in", "users/+/in"] {
                assert!(!acl.can_publish(u, "c", topic), "user {evil:?} → {topic:?}");
            }
            for filter in ["users/+/in", "users/#", "#", "users/a/b/in"] {
                assert!(
                    !acl.can_subscribe(u, "c", filter),
                    "user {evil:?} → {filter:?}"
                );
            }
            assert!(
                !acl.can_publish(Some("u"), evil, "x/out"),
                "client {evil:?}"
            );
            assert!(
                !acl.can_publish(Some("u"), evil, "a/b/out"),
                "client {evil:?}"
            );
            assert!(!acl.can_subscribe(Some("u"), evil, "#"), "client {evil:?}");
            assert!(
                !acl.can_subscribe(Some("u"), evil, "+/#"),
                "client {evil:?}"
            );
        }
        // A client id may not make the filter reach the server's `$` topics.
        assert!(!acl.can_subscribe(Some("u"), "$SYS", "$SYS/#"));
        assert!(!acl.can_publish(Some("u"), "$SYS", "$SYS/out"));
        // Where the `$` is not first it is only text.
        assert!(acl.can_publish(Some("$u"), "c", "users/$u/in"));
        assert!(acl.can_subscribe(Some("u"), "c1", "c1/#"));
    }

    #[test]
    fn bad_rules_are_refused_naming_the_key() {
        let cases: &[(AclRule, &str, &str)] = &[
            (
                rule("*", &["a/{user}"], &[]),
                "mqtt.acl[0].publish[0]",
                "not a placeholder",
            ),
            (
                rule("*", &["a", "a/{username"], &[]),
                "mqtt.acl[0].publish[1]",
                "without",
            ),
            (
                rule("*", &[], &["a}/b"]),
                "mqtt.acl[0].subscribe[0]",
                "without",
            ),
            (
                rule("*", &[], &["a/#/b"]),
                "mqtt.acl[0].subscribe[0]",
                "last level",
            ),
            (
                rule("*", &[], &["{username}+"]),
                "mqtt.acl[0].subscribe[0]",
                "whole level",
            ),
            (
                rule("*", &[], &["$share/g/a"]),
                "mqtt.acl[0].subscribe[0]",
                "not supported",
            ),
            (rule("*", &[""], &[]), "mqtt.acl[0].publish[0]", "empty"),
            (
                rule("*", &["{username}{clientid}"], &[]),
                "mqtt.acl[0].publish[0]",
                "one placeholder per level",
            ),
            (
                rule("*", &["a/{username}-{clientid}/b"], &[]),
                "mqtt.acl[0].publish[0]",
                "one placeholder per level",
            ),
            (rule("", &[], &[]), "mqtt.acl[0].username", "empty"),
        ];
        for (r, key, want) in cases {
            let e =
                Acl::new(&[rule("ok", &["{username}/{clientid}/#"], &[]), r.clone()]).unwrap_err();
            let key = key.replace("acl[0]", "acl[1]");
            assert!(e.starts_with(&key) && e.contains(want), "{r:?}: {e}");
        }
    }
}
