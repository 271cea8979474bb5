//! `fleetwatch sql`: a ksqlDB-style shell over the server's ksqlDB-compatible REST API.
//!
//! Statements are split on the client (a `;` outside quotes and comments ends one) and sent
//! one at a time, as ksqlDB's CLI does: `SELECT` and `PRINT` to `/query` (rows are printed
//! as they arrive), everything else to `/ksql`. `SET` and `UNSET` are kept here and sent as
//! `streamsProperties` with every later statement. Interactive input uses rustyline: line
//! editing, a history file, statements over several lines, tab completion of keywords and of
//! the server's streams, tables, columns and functions; Ctrl-C ends a running push query
//! (`/close-query`, then the connection is dropped) and Ctrl-D exits.

use crate::cmd::Global;
use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server used when neither a URL nor a running server's `server.json` names one.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8088";

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned tables, like ksqlDB's CLI.
    Tabular,
    /// The server's entities and rows as JSON.
    Json,
}

#[derive(Args, Debug)]
/// Arguments.
pub struct SqlArgs {
    /// The server's ksqlDB API, e.g. `http://127.0.0.1:8088` (the same as the global
    /// `--server`, which here names the ksqlDB API; default: the `ksql` URL in the
    /// `server.json` of a `serve` owning `--data-dir`, else http://127.0.0.1:8088).
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Run these statements and exit (non-zero at the first that fails).
    #[arg(long, short = 'e', value_name = "SQL", conflicts_with = "file")]
    pub execute: Option<String>,
    /// Run the statements of this file (separated by `;`, `--` comments) and exit
    /// (non-zero at the first that fails).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = Output::Tabular, env = "FLEETWATCH_SQL_OUTPUT")]
    pub output: Output,
    /// History file of the interactive shell (default: `~/.fleetwatch_sql_history`, or
    /// `<data_dir>/sql_history` without a home directory).
    #[arg(long, value_name = "FILE", env = "FLEETWATCH_SQL_HISTORY")]
    pub history: Option<PathBuf>,
    /// Keep no history file.
    #[arg(long, conflicts_with = "history")]
    pub no_history: bool,
}

/// Runs it.
pub fn run(g: &Global, a: SqlArgs) -> anyhow::Result<()> {
    let config = g.config()?;
    let data_dir = config.embedded.data_dir.clone();
    let base = match a.url.clone().or_else(|| g.server.clone()) {
        Some(u) => u,
        None => fleetwatch::remote::running_server(&data_dir)
            .map(|f| f.ksql)
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
    };
    let rt = crate::cmd::runtime(false)?;
    let mut client = Client::new(&base, a.output)?;
    if let Some(sql) = &a.execute {
        return rt.block_on(client.run_script(sql, None));
    }
    if let Some(path) = &a.file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return rt.block_on(client.run_script(&text, Some(path)));
    }
    let history = if a.no_history {
        None
    } else {
        Some(
            a.history
                .clone()
                .unwrap_or_else(|| default_history(&data_dir)),
        )
    };
    shell(&rt, &mut client, history.as_deref())
}

fn default_history(data_dir: &Path) -> PathBuf {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".fleetwatch_sql_history"),
        None => data_dir.join("sql_history"),
    }
}

// ---------------------------------------------------------------------------------------
// Splitting statements.

/// One statement of the input and where it starts (line and column from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stmt {
    text: String,
    line: usize,
    column: usize,
}

/// The input split into statements (each with its `;`) and what follows the last `;`
/// (empty, comments only, or an unfinished statement).
#[derive(Debug, Default)]
struct Split {
    stmts: Vec<Stmt>,
    /// The unfinished statement after the last `;`, if there is more than blanks and comments.
    rest: Option<Stmt>,
    /// The input ends inside a quote or a block comment.
    open: bool,
}

/// Splits on `;` outside `'…'` strings (with `''`), `"…"` and `` `…` `` identifiers, `--`
/// line comments and `/* */` block comments. Leading blanks and comments are not part of a
/// statement.
fn split(input: &str) -> Split {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut out = Split::default();
    let (mut line, mut col) = (1usize, 1usize);
    // The start of the current statement: byte offset, line, column.
    let mut start: Option<(usize, usize, usize)> = None;
    let mut i = 0;
    let advance = |c: char, line: &mut usize, col: &mut usize| {
        if c == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
    };
    while i < chars.len() {
        let (off, c) = chars[i];
        let next = chars.get(i + 1).map(|x| x.1);
        if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i].1 != '\n' {
                advance(chars[i].1, &mut line, &mut col);
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            advance(c, &mut line, &mut col);
            advance('*', &mut line, &mut col);
            i += 2;
            let mut closed = false;
            while i < chars.len() {
                let c = chars[i].1;
                if c == '*' && chars.get(i + 1).map(|x| x.1) == Some('/') {
                    advance(c, &mut line, &mut col);
                    advance('/', &mut line, &mut col);
                    i += 2;
                    closed = true;
                    break;
                }
                advance(c, &mut line, &mut col);
                i += 1;
            }
            if !closed {
                out.open = true;
            }
            continue;
        }
        if c.is_whitespace() {
            advance(c, &mut line, &mut col);
            i += 1;
            continue;
        }
        if start.is_none() {
            start = Some((off, line, col));
        }
        if c == '\'' || c == '"' || c == '`' {
            advance(c, &mut line, &mut col);
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                let d = chars[i].1;
                advance(d, &mut line, &mut col);
                i += 1;
                if d == c {
                    // A doubled quote is the quote itself.
                    if chars.get(i).map(|x| x.1) == Some(c) {
                        advance(c, &mut line, &mut col);
                        i += 1;
                        continue;
                    }
                    closed = true;
                    break;
                }
            }
            if !closed {
                out.open = true;
            }
            continue;
        }
        advance(c, &mut line, &mut col);
        i += 1;
        if c == ';'
            && let Some((s, l, cl)) = start.take()
        {
            out.stmts.push(Stmt {
                text: input[s..off + 1].to_string(),
                line: l,
                column: cl,
            });
        }
    }
    if let Some((s, l, cl)) = start {
        out.rest = Some(Stmt {
            text: input[s..].trim_end().to_string(),
            line: l,
            column: cl,
        });
    }
    out
}

/// A command of the shell itself (no `;` needed).
fn shell_command(input: &str) -> Option<&'static str> {
    let t = input
        .trim()
        .trim_end_matches(';')
        .trim()
        .to_ascii_lowercase();
    match t.as_str() {
        "exit" | "quit" => Some("exit"),
        "help" => Some("help"),
        _ => None,
    }
}

/// The first word of a statement, upper-cased.
fn first_word(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// `'…'` at the start of `s` (after blanks): its text and what follows.
fn quoted_string(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let mut rest = s.strip_prefix('\'')?;
    let mut out = String::new();
    loop {
        let i = rest.find('\'')?;
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('\'') {
            out.push('\'');
            rest = r;
        } else {
            return Some((out, rest));
        }
    }
}

/// `SET 'name' = 'value';` → (name, value).
fn parse_set(text: &str) -> Option<(String, String)> {
    let body = text.trim().get(3..)?;
    let (name, rest) = quoted_string(body)?;
    let rest = rest.trim_start().strip_prefix('=')?;
    let (value, rest) = quoted_string(rest)?;
    rest.trim()
        .trim_end_matches(';')
        .trim()
        .is_empty()
        .then_some((name, value))
}

/// `UNSET 'name';` → name.
fn parse_unset(text: &str) -> Option<String> {
    let body = text.trim().get(5..)?;
    let (name, rest) = quoted_string(body)?;
    rest.trim()
        .trim_end_matches(';')
        .trim()
        .is_empty()
        .then_some(name)
}

/// ksqlDB's `line L:C: …` made relative to the whole input, where the statement starts at
/// `line`:`column`.
fn reposition(message: &str, line: usize, column: usize) -> String {
    let parsed = message.strip_prefix("line ").and_then(|rest| {
        let (l, rest) = rest.split_once(':')?;
        let (c, rest) = rest.split_once(':')?;
        Some((l.parse::<usize>().ok()?, c.parse::<usize>().ok()?, rest))
    });
    match parsed {
        Some((l, c, rest)) => {
            let c = if l == 1 { c + column - 1 } else { c };
            format!("line {}:{c}:{rest}", l + line - 1)
        }
        None => message.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// The client.

/// What a failed statement reports: ksqlDB's message.
#[derive(Debug)]
struct StmtError(String);

/// The names tab completion offers, from the server.
#[derive(Debug, Default)]
struct Names {
    sources: BTreeSet<String>,
    columns: BTreeSet<String>,
    functions: BTreeSet<String>,
}

struct Client {
    base: String,
    http: reqwest::Client,
    output: Output,
    /// `SET` properties, sent as `streamsProperties`.
    props: BTreeMap<String, String>,
    /// Ctrl-C ends a push query (interactive shell) instead of the process.
    catch_interrupt: bool,
    names: Arc<Mutex<Names>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The error message of a failed response: ksqlDB's `message`, or the body.
async fn error_of(r: reqwest::Response) -> String {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => match v.get("message").and_then(Value::as_str) {
            Some(m) => m.to_string(),
            None => format!("the server answered {status}: {text}"),
        },
        Err(_) => format!("the server answered {status}: {}", text.trim()),
    }
}

impl Client {
    fn new(base: &str, output: Output) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
            output,
            props: BTreeMap::new(),
            catch_interrupt: false,
            names: Arc::default(),
        })
    }

    fn props_json(&self) -> Value {
        Value::Object(
            self.props
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }

    async fn post(&self, path: &str, body: Value) -> Result<reqwest::Response, StmtError> {
        self.http
            .post(format!("{}{path}", self.base))
            .header("Accept", "application/vnd.ksql.v1+json")
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                StmtError(format!(
                    "cannot reach the ksqlDB server at {}: {e}",
                    self.base
                ))
            })
    }

    /// `-e` / `-f`: every statement in order, stopping at the first error.
    async fn run_script(&mut self, text: &str, file: Option<&Path>) -> anyhow::Result<()> {
        let sp = split(text);
        if sp.open {
            bail!("the input ends inside a quoted string or a comment");
        }
        let source = file.map_or_else(|| "-e".to_string(), |f| f.display().to_string());
        let all: Vec<&Stmt> = sp.stmts.iter().chain(sp.rest.iter()).collect();
        for (n, st) in all.iter().enumerate() {
            if let Err(StmtError(m)) = self.statement(st).await {
                // ksqlDB's message as it is, then which statement it was.
                eprintln!("{}", reposition(&m, st.line, st.column));
                let left = all.len() - n - 1;
                bail!(
                    "{source}: the statement at line {}:{} failed{}",
                    st.line,
                    st.column,
                    if left > 0 {
                        format!("; the {left} after it did not run")
                    } else {
                        String::new()
                    }
                );
            }
        }
        Ok(())
    }

    /// A message of the shell itself: stdout, or stderr with `--output json` (whose stdout
    /// holds only the server's JSON).
    fn note(&self, m: &str) {
        match self.output {
            Output::Tabular => println!("{m}"),
            Output::Json => eprintln!("{m}"),
        }
    }

    /// One statement: client-side `SET`/`UNSET`, `/query` for `SELECT`/`PRINT`, else `/ksql`.
    async fn statement(&mut self, st: &Stmt) -> Result<(), StmtError> {
        match first_word(&st.text).as_str() {
            "SET" => {
                let (k, v) = parse_set(&st.text)
                    .ok_or_else(|| StmtError("line 1:1: SET takes 'property' = 'value'".into()))?;
                self.note(&format!(
                    "Successfully changed local property '{k}' to '{v}'. Use the UNSET command to revert your change."
                ));
                self.props.insert(k, v);
                Ok(())
            }
            "UNSET" => {
                let k = parse_unset(&st.text)
                    .ok_or_else(|| StmtError("line 1:1: UNSET takes 'property'".into()))?;
                match self.props.remove(&k) {
                    Some(old) => self.note(&format!(
                        "Successfully unset local property '{k}' (value was '{old}')."
                    )),
                    None => self.note(&format!("Property '{k}' was not set locally.")),
                }
                Ok(())
            }
            "SELECT" | "PRINT" => self.query(&st.text).await,
            _ => self.ksql(&st.text).await,
        }
    }

    async fn ksql(&self, text: &str) -> Result<(), StmtError> {
        let r = self
            .post(
                "/ksql",
                json!({"ksql": text, "streamsProperties": self.props_json()}),
            )
            .await?;
        if !r.status().is_success() {
            return Err(StmtError(error_of(r).await));
        }
        let v: Value = r
            .json()
            .await
            .map_err(|e| StmtError(format!("the server's answer is not JSON: {e}")))?;
        let mut out = std::io::stdout().lock();
        match self.output {
            Output::Json => {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                );
            }
            Output::Tabular => {
                for e in v.as_array().into_iter().flatten() {
                    let _ = write!(out, "{}", render_entity(e));
                }
            }
        }
        Ok(())
    }

    /// A `SELECT` or `PRINT` on `/query`: prints rows as they arrive, until the server ends
    /// the stream (LIMIT, a pull query's end) or Ctrl-C.
    async fn query(&self, text: &str) -> Result<(), StmtError> {
        let mut r = self
            .post(
                "/query",
                json!({"ksql": text, "streamsProperties": self.props_json()}),
            )
            .await?;
        if !r.status().is_success() {
            return Err(StmtError(error_of(r).await));
        }
        let text_plain = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/"));
        let mut rows = RowPrinter::new(self.output);
        let mut buf: Vec<u8> = Vec::new();
        let interrupt = async {
            if self.catch_interrupt {
                let _ = tokio::signal::ctrl_c().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(interrupt);
        loop {
            let chunk = tokio::select! {
                c = r.chunk() => c,
                () = &mut interrupt => {
                    if let Some(id) = &rows.query_id {
                        let _ = self.post("/close-query", json!({"queryId": id})).await;
                    }
                    drop(r);
                    rows.end(Some("Query terminated"));
                    return Ok(());
                }
            };
            let chunk = chunk.map_err(|e| StmtError(format!("reading the query's rows: {e}")))?;
            let Some(chunk) = chunk else { break };
            if text_plain {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&chunk);
                let _ = out.flush();
                continue;
            }
            buf.extend_from_slice(&chunk);
            let used = rows.feed(&buf)?;
            buf.drain(..used);
        }
        if !text_plain && !rows.ended {
            rows.end(None);
        }
        Ok(())
    }

    /// Reloads the names tab completion offers (streams, tables, their columns, functions).
    async fn refresh_names(&self) {
        let Ok(r) = self
            .post(
                "/ksql",
                json!({"ksql": "SHOW STREAMS EXTENDED; SHOW TABLES EXTENDED; SHOW FUNCTIONS;", "streamsProperties": {}}),
            )
            .await
        else {
            return;
        };
        let Ok(v) = r.json::<Value>().await else {
            return;
        };
        let mut names = Names::default();
        for e in v.as_array().into_iter().flatten() {
            for s in e["sourceDescriptions"].as_array().into_iter().flatten() {
                if let Some(n) = s["name"].as_str() {
                    names.sources.insert(n.to_string());
                }
                for f in s["fields"].as_array().into_iter().flatten() {
                    if let Some(n) = f["name"].as_str() {
                        names.columns.insert(n.to_string());
                    }
                }
            }
            for f in e["functions"].as_array().into_iter().flatten() {
                if let Some(n) = f["name"].as_str() {
                    names.functions.insert(n.to_string());
                }
            }
        }
        *lock(&self.names) = names;
    }
}

// ---------------------------------------------------------------------------------------
// Printing.

/// Column names of a `/query` header schema: `` `A` STRING KEY, `B` STRUCT<`X` INT> ``.
fn schema_columns(schema: &str) -> Vec<String> {
    let mut cols = Vec::new();
    let mut depth = 0i32;
    let mut in_quote = false;
    let mut cur = String::new();
    for c in schema.chars() {
        match c {
            '`' => in_quote = !in_quote,
            '<' | '(' if !in_quote => depth += 1,
            '>' | ')' if !in_quote => depth -= 1,
            ',' if !in_quote && depth == 0 => {
                cols.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        cols.push(cur);
    }
    cols.iter()
        .map(|c| {
            let c = c.trim();
            match c.strip_prefix('`') {
                Some(rest) => rest.split('`').next().unwrap_or(rest).to_string(),
                None => c.split_whitespace().next().unwrap_or(c).to_string(),
            }
        })
        .collect()
}

/// A cell: strings as they are, everything else as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints the `/query` stream: `[{"header"}, {"row"}…, {"finalMessage"}]`.
struct RowPrinter {
    output: Output,
    widths: Vec<usize>,
    query_id: Option<String>,
    ended: bool,
}

impl RowPrinter {
    fn new(output: Output) -> Self {
        RowPrinter {
            output,
            widths: Vec::new(),
            query_id: None,
            ended: false,
        }
    }

    fn border(&self) -> String {
        let mut s = String::from("+");
        for w in &self.widths {
            s.push_str(&"-".repeat(*w));
            s.push('+');
        }
        s
    }

    fn line(&self, cells: &[String]) -> String {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let w = self.widths.get(i).copied().unwrap_or(0);
            s.push_str(&format!("{c:<w$}|"));
        }
        s
    }

    /// Handles the complete elements at the start of `buf`; returns how many bytes it used.
    fn feed(&mut self, buf: &[u8]) -> Result<usize, StmtError> {
        let mut i = 0;
        let mut out = std::io::stdout().lock();
        loop {
            while i < buf.len() && matches!(buf[i], b'[' | b',' | b']' | b' ' | b'\n' | b'\r') {
                i += 1;
            }
            if i >= buf.len() {
                break;
            }
            let mut it = serde_json::Deserializer::from_slice(&buf[i..]).into_iter::<Value>();
            let v = match it.next() {
                Some(Ok(v)) => v,
                Some(Err(e)) if e.is_eof() => break,
                None => break,
                Some(Err(e)) => {
                    return Err(StmtError(format!("the server's rows are not JSON: {e}")));
                }
            };
            i += it.byte_offset();
            if self.output == Output::Json {
                let _ = writeln!(out, "{v}");
            }
            if let Some(h) = v.get("header") {
                self.query_id = h["queryId"].as_str().map(str::to_string);
                let names = schema_columns(h["schema"].as_str().unwrap_or(""));
                let term: usize = std::env::var("COLUMNS")
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(120);
                let each = (term.saturating_sub(1) / names.len().max(1))
                    .saturating_sub(1)
                    .clamp(6, 30);
                self.widths = names.iter().map(|n| n.len().max(each)).collect();
                if self.output == Output::Tabular {
                    let _ = writeln!(out, "{}", self.border());
                    let _ = writeln!(out, "{}", self.line(&names));
                    let _ = writeln!(out, "{}", self.border());
                }
            } else if let Some(r) = v.get("row") {
                if self.output == Output::Tabular {
                    let cells: Vec<String> = r["columns"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(cell)
                        .collect();
                    let _ = writeln!(out, "{}", self.line(&cells));
                }
            } else if let Some(m) = v.get("finalMessage") {
                drop(out);
                self.end(m.as_str());
                out = std::io::stdout().lock();
            } else if let Some(e) = v.get("errorMessage") {
                let m = e["message"].as_str().unwrap_or("the query failed");
                return Err(StmtError(m.to_string()));
            }
        }
        let _ = out.flush();
        Ok(i)
    }

    fn end(&mut self, message: Option<&str>) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.output == Output::Tabular {
            if !self.widths.is_empty() {
                println!("{}", self.border());
            }
            if let Some(m) = message {
                println!("{m}");
            }
        }
    }
}

/// A ksqlDB CLI table: ` A | B ` over a rule, the rows, and a closing rule.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let fmt = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let width = w.get(i).copied().unwrap_or(0);
                format!(" {c:<width$} ")
            })
            .collect::<Vec<_>>()
            .join("|")
    };
    let head = fmt(headers.to_vec());
    let rule = "-".repeat(head.chars().count());
    let mut s = format!("{head}\n{rule}\n");
    for r in rows {
        s.push_str(&fmt(r.iter().map(String::as_str).collect()));
        s.push('\n');
    }
    s.push_str(&rule);
    s.push('\n');
    s
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

/// The `Field | Type` table of a source or query description (`(key)` after key columns).
fn fields_table(fields: &Value) -> String {
    let rows: Vec<Vec<String>> = fields
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let key = if f["type"] == "KEY" { "  (key)" } else { "" };
            vec![s(&f["name"]), format!("{}{key}", type_text(&f["schema"]))]
        })
        .collect();
    table(&["Field", "Type"], &rows)
}

/// A field's type as ksqlDB's CLI shows it: `VARCHAR(STRING)`, `STRUCT<A INT>`, ….
fn type_text(schema: &Value) -> String {
    let t = schema["type"].as_str().unwrap_or("?");
    match t {
        "STRING" => "VARCHAR(STRING)".to_string(),
        "STRUCT" => {
            let fs: Vec<String> = schema["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| format!("{} {}", s(&f["name"]), inner_type(&f["schema"])))
                .collect();
            format!("STRUCT<{}>", fs.join(", "))
        }
        "ARRAY" => format!("ARRAY<{}>", inner_type(&schema["memberSchema"])),
        "MAP" => format!("MAP<STRING, {}>", inner_type(&schema["memberSchema"])),
        other => other.to_string(),
    }
}

fn inner_type(schema: &Value) -> String {
    match schema["type"].as_str() {
        Some("STRING") => "VARCHAR".to_string(),
        _ => type_text(schema),
    }
}

fn describe_source(d: &Value) -> String {
    let mut out = String::new();
    let kv = |out: &mut String, k: &str, v: String| out.push_str(&format!("{k:<21}: {v}\n"));
    kv(&mut out, "Name", s(&d["name"]));
    let extended = d["extended"].as_bool().unwrap_or(false);
    if extended {
        kv(&mut out, "Type", s(&d["type"]));
        kv(&mut out, "Timestamp field", {
            let t = s(&d["timestamp"]);
            if t.is_empty() {
                "Not set - using <ROWTIME>".into()
            } else {
                t
            }
        });
        kv(&mut out, "Key format", s(&d["keyFormat"]));
        kv(&mut out, "Value format", s(&d["valueFormat"]));
        kv(
            &mut out,
            "Kafka topic",
            format!(
                "{} (partitions: {}, replication: {})",
                s(&d["topic"]),
                s(&d["partitions"]),
                s(&d["replication"])
            ),
        );
        kv(&mut out, "Statement", s(&d["statement"]));
    }
    out.push_str(&fields_table(&d["fields"]));
    if extended {
        for (what, k) in [
            ("Queries that read from this", "readQueries"),
            ("Queries that write from this", "writeQueries"),
        ] {
            let qs: Vec<&Value> = d[k].as_array().into_iter().flatten().collect();
            out.push_str(&format!("\n{what} {}:\n", s(&d["type"])));
            out.push_str(&"-".repeat(what.len() + 8));
            out.push('\n');
            for q in qs {
                out.push_str(&format!(
                    "{} ({}) : {}\n",
                    s(&q["id"]),
                    s(&q["state"]),
                    s(&q["queryString"])
                ));
            }
        }
        out.push_str("\nFor query topology and execution plan please run: EXPLAIN <QueryId>\n");
    } else {
        out.push_str(
            "For runtime statistics and query details run: DESCRIBE <Stream,Table> EXTENDED;\n",
        );
    }
    out
}

/// One `/ksql` entity as ksqlDB's CLI prints it (pretty JSON for shapes it does not know).
fn render_entity(e: &Value) -> String {
    let arr = |k: &str| e[k].as_array().cloned().unwrap_or_default();
    match e["@type"].as_str().unwrap_or("") {
        "currentStatus" => table(&["Message"], &[vec![s(&e["commandStatus"]["message"])]]),
        "streams" | "tables" => {
            let name = if e["@type"] == "streams" {
                "Stream Name"
            } else {
                "Table Name"
            };
            let rows: Vec<Vec<String>> = arr(if e["@type"] == "streams" {
                "streams"
            } else {
                "tables"
            })
            .iter()
            .map(|x| {
                vec![
                    s(&x["name"]),
                    s(&x["topic"]),
                    s(&x["keyFormat"]),
                    s(&x["valueFormat"]),
                    s(&x["isWindowed"]),
                ]
            })
            .collect();
            table(
                &[
                    name,
                    "Kafka Topic",
                    "Key Format",
                    "Value Format",
                    "Windowed",
                ],
                &rows,
            )
        }
        "queries" => {
            let rows: Vec<Vec<String>> = arr("queries")
                .iter()
                .map(|q| {
                    let first = |k: &str| q[k].as_array().and_then(|a| a.first()).map(s);
                    vec![
                        s(&q["id"]),
                        s(&q["queryType"]),
                        s(&q["state"]),
                        first("sinks").unwrap_or_default(),
                        first("sinkKafkaTopics").unwrap_or_default(),
                        s(&q["queryString"]).replace('\n', " "),
                    ]
                })
                .collect();
            table(
                &[
                    "Query ID",
                    "Query Type",
                    "Status",
                    "Sink Name",
                    "Sink Kafka Topic",
                    "Query String",
                ],
                &rows,
            ) + "For detailed information on a Query run: EXPLAIN <Query ID>;\n"
        }
        "kafka_topics" => {
            let rows: Vec<Vec<String>> = arr("topics")
                .iter()
                .map(|t| {
                    let reps = t["replicaInfo"].as_array().cloned().unwrap_or_default();
                    vec![
                        s(&t["name"]),
                        reps.len().to_string(),
                        reps.iter().map(s).collect::<Vec<_>>().join(" "),
                    ]
                })
                .collect();
            table(&["Kafka Topic", "Partitions", "Partition Replicas"], &rows)
        }
        "function_names" => {
            let mut rows: Vec<Vec<String>> = arr("functions")
                .iter()
                .map(|f| vec![s(&f["name"]), s(&f["category"])])
                .collect();
            rows.sort();
            table(&["Function Name", "Category"], &rows)
                + "For detailed information on a function run: DESCRIBE FUNCTION <Function Name>;\n"
        }
        "properties" => {
            let rows: Vec<Vec<String>> = arr("properties")
                .iter()
                .map(|p| vec![s(&p["name"]), s(&p["scope"]), s(&p["value"])])
                .collect();
            table(&["Property", "Scope", "Value"], &rows)
        }
        "sourceDescription" => describe_source(&e["sourceDescription"]),
        "source_descriptions" => arr("sourceDescriptions")
            .iter()
            .map(describe_source)
            .collect::<Vec<_>>()
            .join("\n"),
        "describe_function" => {
            let mut out = String::new();
            for (k, f) in [
                ("Name", "name"),
                ("Author", "author"),
                ("Version", "version"),
                ("Overview", "description"),
                ("Type", "type"),
                ("Jar", "path"),
            ] {
                out.push_str(&format!("{k:<12}: {}\n", s(&e[f])));
            }
            out.push_str("Variations  : \n");
            for v in arr("functions") {
                let args: Vec<String> = v["arguments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| format!("{} {}", s(&a["name"]), s(&a["type"])))
                    .collect();
                out.push_str(&format!(
                    "\n\tVariation   : {}({})\n\tReturns     : {}\n\tDescription : {}\n",
                    s(&e["name"]),
                    args.join(", "),
                    s(&v["returnType"]),
                    s(&v["description"])
                ));
            }
            out
        }
        "queryDescription" => {
            let q = &e["queryDescription"];
            let mut out = String::new();
            out.push_str(&format!("{:<21}: {}\n", "ID", s(&q["id"])));
            out.push_str(&format!("{:<21}: {}\n", "SQL", s(&q["statementText"])));
            out.push_str(&format!("{:<21}: {}\n\n", "Status", s(&q["state"])));
            out.push_str(&fields_table(&q["fields"]));
            let sources: Vec<String> = q["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            out.push_str(&format!(
                "\nSources that this query reads from: \n-----------------------------------\n{}\n",
                sources.join("\n")
            ));
            out.push_str(&format!(
                "\nExecution plan      \n--------------      \n{}\n",
                s(&q["executionPlan"])
            ));
            out
        }
        _ => format!("{}\n", serde_json::to_string_pretty(e).unwrap_or_default()),
    }
}

// ---------------------------------------------------------------------------------------
// The interactive shell.

const KEYWORDS: &[&str] = &[
    "ALL",
    "AND",
    "ARRAY",
    "AS",
    "BEGINNING",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BY",
    "CASE",
    "CAST",
    "CHANGES",
    "CREATE",
    "DATE",
    "DECIMAL",
    "DELETE",
    "DESCRIBE",
    "DISTINCT",
    "DOUBLE",
    "DROP",
    "ELSE",
    "EMIT",
    "END",
    "EXISTS",
    "EXIT",
    "EXPLAIN",
    "EXTENDED",
    "FALSE",
    "FROM",
    "FUNCTION",
    "FUNCTIONS",
    "GROUP",
    "HAVING",
    "HELP",
    "IF",
    "IN",
    "INSERT",
    "INT",
    "INTEGER",
    "INTERVAL",
    "INTO",
    "IS",
    "KAFKA_TOPIC",
    "KEY",
    "KEY_FORMAT",
    "LIKE",
    "LIMIT",
    "LIST",
    "MAP",
    "NOT",
    "NULL",
    "OR",
    "PARTITION",
    "PARTITIONS",
    "PRIMARY",
    "PRINT",
    "PROPERTIES",
    "QUERIES",
    "RUN",
    "SCRIPT",
    "SELECT",
    "SET",
    "SHOW",
    "STREAM",
    "STREAMS",
    "STRING",
    "STRUCT",
    "TABLE",
    "TABLES",
    "TERMINATE",
    "THEN",
    "TIMESTAMP",
    "TOPIC",
    "TOPICS",
    "TRUE",
    "UNSET",
    "VALUES",
    "VALUE_FORMAT",
    "VARCHAR",
    "WHEN",
    "WHERE",
    "WITH",
];

/// rustyline's helper: completion, and the check that a statement is complete.
struct SqlHelper {
    names: Arc<Mutex<Names>>,
}

impl SqlHelper {
    fn candidates(&self, prefix: &str) -> Vec<String> {
        if prefix.is_empty() {
            return Vec::new();
        }
        let up = prefix.to_ascii_uppercase();
        let lower = prefix.chars().any(|c| c.is_ascii_lowercase())
            && !prefix.chars().any(|c| c.is_ascii_uppercase());
        let mut out: BTreeSet<String> = BTreeSet::new();
        for k in KEYWORDS {
            if k.starts_with(&up) {
                out.insert(if lower {
                    k.to_ascii_lowercase()
                } else {
                    (*k).to_string()
                });
            }
        }
        let names = lock(&self.names);
        for n in names
            .sources
            .iter()
            .chain(&names.columns)
            .chain(&names.functions)
        {
            if n.to_ascii_uppercase().starts_with(&up) {
                out.insert(n.clone());
            }
        }
        out.into_iter().collect()
    }
}

impl Completer for SqlHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = line.get(..pos).unwrap_or(line);
        let start = head
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        Ok((start, self.candidates(&head[start..])))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {}

/// Complete: blank, a shell command, or every statement ended by `;`.
fn input_complete(input: &str) -> bool {
    if shell_command(input).is_some() {
        return true;
    }
    let sp = split(input);
    !sp.open && sp.rest.is_none()
}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if input_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl rustyline::Helper for SqlHelper {}

const HELP: &str = "\
Statements end with ';' and may span lines; SELECT and PRINT stream their rows (Ctrl-C ends
a push query). SET 'property'='value'; and UNSET 'property'; are kept by this shell and
sent with every later statement (e.g. SET 'auto.offset.reset'='earliest';).
  SHOW STREAMS | TABLES | QUERIES | TOPICS | FUNCTIONS | PROPERTIES;
  DESCRIBE [EXTENDED] <name>;   DESCRIBE FUNCTION <name>;   EXPLAIN <query id>;
  CREATE STREAM … WITH (kafka_topic='…', value_format='JSON', partitions=1);
  INSERT INTO <stream> (…) VALUES (…);   SELECT … FROM <stream> EMIT CHANGES [LIMIT n];
  PRINT '<topic>' [FROM BEGINNING] [LIMIT n];   TERMINATE <query id>;   DROP STREAM <name>;
Tab completes keywords and the server's streams, tables, columns and functions.
'exit' or Ctrl-D leaves.
";

fn shell(
    rt: &tokio::runtime::Runtime,
    client: &mut Client,
    history: Option<&Path>,
) -> anyhow::Result<()> {
    let tty = std::io::stdin().is_terminal();
    client.catch_interrupt = true;
    // Take SIGINT over now (tokio installs its handler at the first poll), so a Ctrl-C
    // while a query is being sent does not end the shell either.
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::ZERO, tokio::signal::ctrl_c()).await;
    });
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)?
        .history_ignore_dups(true)?
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: rustyline::Editor<SqlHelper, FileHistory> =
        rustyline::Editor::with_config(config).context("starting the line editor")?;
    editor.set_helper(Some(SqlHelper {
        names: client.names.clone(),
    }));
    // History is for people: a script piped into the shell leaves none.
    let history = history.filter(|_| tty);
    if let Some(h) = history
        && h.exists()
        && let Err(e) = editor.load_history(h)
    {
        eprintln!(
            "fleetwatch sql: cannot read the history {}: {e}",
            h.display()
        );
    }
    if tty {
        let info = rt.block_on(async {
            let r = client
                .http
                .get(format!("{}/info", client.base))
                .send()
                .await?;
            r.json::<Value>().await
        });
        match info {
            Ok(v) => eprintln!(
                "fleetwatch sql — ksqlDB {} at {} (service {}). Statements end with ';'; 'help' for more, Ctrl-D exits.",
                s(&v["KsqlServerInfo"]["version"]),
                client.base,
                s(&v["KsqlServerInfo"]["ksqlServiceId"])
            ),
            Err(e) => eprintln!(
                "fleetwatch sql: cannot reach the ksqlDB server at {} ({e}); statements will fail until it answers.",
                client.base
            ),
        }
        rt.block_on(client.refresh_names());
    }
    let mut failed = false;
    loop {
        let input = match editor.readline("ksql> ") {
            Ok(i) => i,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading input"),
        };
        if input.trim().is_empty() {
            continue;
        }
        if let Some(h) = history {
            let _ = editor.add_history_entry(input.as_str());
            if let Err(e) = editor.append_history(h) {
                eprintln!(
                    "fleetwatch sql: cannot write the history {}: {e}",
                    h.display()
                );
            }
        }
        match shell_command(&input) {
            Some("exit") => break,
            Some(_) => {
                print!("{HELP}");
                continue;
            }
            None => {}
        }
        let sp = split(&input);
        let mut changed = false;
        for st in &sp.stmts {
            let word = first_word(&st.text);
            match rt.block_on(client.statement(st)) {
                Ok(()) => changed |= !matches!(word.as_str(), "SELECT" | "PRINT" | "SET" | "UNSET"),
                Err(StmtError(m)) => {
                    failed = true;
                    eprintln!("{}", reposition(&m, st.line, st.column));
                    break;
                }
            }
        }
        if changed && tty {
            rt.block_on(client.refresh_names());
        }
    }
    if failed && !tty {
        bail!("a statement failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let sp = split(
            "-- a comment; not a statement\nSELECT 'a;b' FROM s; /* x; */ SHOW `we;ird`;\n  INSERT INTO s VALUES ('it''s;');\nSELECT",
        );
        let texts: Vec<&str> = sp.stmts.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "SELECT 'a;b' FROM s;",
                "SHOW `we;ird`;",
                "INSERT INTO s VALUES ('it''s;');"
            ]
        );
        assert_eq!((sp.stmts[0].line, sp.stmts[0].column), (2, 1));
        assert_eq!((sp.stmts[1].line, sp.stmts[1].column), (2, 31));
        assert_eq!((sp.stmts[2].line, sp.stmts[2].column), (3, 3));
        assert_eq!(sp.rest.map(|r| r.text), Some("SELECT".to_string()));
        assert!(!sp.open);
        assert!(split("SELECT 'open;").open);
    }

    #[test]
    fn statements_complete_at_a_semicolon() {
        assert!(input_complete("SHOW STREAMS;"));
        assert!(input_complete("SHOW STREAMS; -- done"));
        assert!(!input_complete("CREATE STREAM s (a INT)\n"));
        assert!(!input_complete("SELECT ';"));
        assert!(input_complete("exit"));
        assert!(input_complete("  "));
    }

    #[test]
    fn set_and_unset_parse() {
        assert_eq!(
            parse_set("SET 'auto.offset.reset' = 'earliest';"),
            Some(("auto.offset.reset".into(), "earliest".into()))
        );
        assert_eq!(
            parse_set("set 'a'='it''s';"),
            Some(("a".into(), "it's".into()))
        );
        assert_eq!(parse_set("SET a = b;"), None);
        assert_eq!(parse_unset("UNSET 'a';"), Some("a".into()));
    }

    #[test]
    fn positions_are_made_relative_to_the_input() {
        assert_eq!(reposition("line 1:8: no", 3, 5), "line 3:12: no");
        assert_eq!(reposition("line 2:8: no", 3, 5), "line 4:8: no");
        assert_eq!(reposition("Unknown stream", 3, 5), "Unknown stream");
    }

    #[test]
    fn header_schema_gives_column_names() {
        assert_eq!(
            schema_columns("`VIN` STRING KEY, `LOC` STRUCT<`LAT` DOUBLE, `LON` DOUBLE>, `A,B` INT"),
            ["VIN", "LOC", "A,B"]
        );
    }

    #[test]
    fn tables_are_aligned() {
        let t = table(&["Name", "X"], &[vec!["LONGER".into(), "1".into()]]);
        assert_eq!(
            t,
            " Name   | X \n------------\n LONGER | 1 \n------------\n"
        );
    }

    #[test]
    fn completion_matches_keywords_and_names() {
        let h = SqlHelper {
            names: Arc::new(Mutex::new(Names {
                sources: ["PAYMENTS".to_string()].into(),
                columns: ["AMOUNT".to_string()].into(),
                functions: ["MASK".to_string()].into(),
            })),
        };
        assert_eq!(h.candidates("sel"), ["select"]);
        assert_eq!(h.candidates("PAY"), ["PAYMENTS"]);
        assert!(h.candidates("MA").contains(&"MASK".to_string()));
        assert!(h.candidates("MA").contains(&"MAP".to_string()));
        assert_eq!(h.candidates("am"), ["AMOUNT"]);
    }
}
