//! The ksqlDB dialect: statements as a [`KsqlStatement`] enum, built with sqlparser's
//! tokenizer and `Parser` primitives (the pattern of DataFusion's `DFParser`).
//!
//! - The text is tokenized once, with locations; whitespace and comments are dropped and
//!   every unquoted word is upper-cased (ksqlDB's identifier rule; keywords match either
//!   way), so the planner runs with DataFusion's own lower-casing switched off.
//! - Statements are split at top-level `;`, each keeping its source text.
//! - ksqlDB-only statements (`CREATE STREAM … WITH (…)`, `SHOW`, `PRINT`, `TERMINATE`…)
//!   are parsed here on a small cursor over those tokens.
//! - A `SELECT` has its ksqlDB-only clauses (`WINDOW …`, `PARTITION BY …`, `EMIT CHANGES`,
//!   `LIMIT n`) cut out at token level and the rest handed to sqlparser's `parse_query`, so
//!   errors keep exact lines and columns.
//! - `a->b` (struct field access) is parsed by the dialect's infix hook into a field access
//!   (`CompoundFieldAccess` with a named field), which DataFusion plans as `get_field`.

use crate::types::SqlType;
use datafusion_sql::sqlparser::ast::{self, AccessExpr, Expr, Value};
use datafusion_sql::sqlparser::dialect::{Dialect, Precedence};
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer};
use std::collections::BTreeMap;
use std::fmt;

/// A syntax error, at a line and column of the submitted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
    /// What was wrong: what was expected and what was found.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The ksqlDB dialect for sqlparser: back-quoted and double-quoted identifiers, and `->`.
#[derive(Debug, Default, Clone, Copy)]
pub struct KsqlDialect;

impl Dialect for KsqlDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '$'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        if parser.peek_token_ref().token != Token::Arrow {
            return None;
        }
        parser.next_token();
        let field = match parser.parse_identifier() {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        let access = AccessExpr::Dot(Expr::value(Value::SingleQuotedString(field.value)));
        Some(Ok(match expr.clone() {
            Expr::CompoundFieldAccess {
                root,
                mut access_chain,
            } => {
                access_chain.push(access);
                Expr::CompoundFieldAccess { root, access_chain }
            }
            other => Expr::CompoundFieldAccess {
                root: Box::new(other),
                access_chain: vec![access],
            },
        }))
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        (parser.peek_token_ref().token == Token::Arrow)
            .then(|| Ok(self.prec_value(Precedence::Period)))
    }
}

/// STREAM or TABLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SourceKind {
    /// An unbounded sequence of independent events.
    Stream,
    /// A changelog: the latest value per key.
    Table,
}

impl SourceKind {
    /// `STREAM` / `TABLE`.
    pub fn keyword(self) -> &'static str {
        match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        }
    }
}

/// A column in `CREATE STREAM … (…)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// Its name (upper-cased unless quoted).
    pub name: String,
    /// Its type.
    pub ty: SqlType,
    /// `KEY` (streams) or `PRIMARY KEY` (tables): read from the record key.
    pub key: bool,
}

/// A value in `WITH (…)` or `SET`.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    /// `'text'`.
    Str(String),
    /// A number.
    Num(String),
    /// `true` / `false`.
    Bool(bool),
}

impl PropValue {
    /// The value as text (`'x'` → `x`, `4` → `4`).
    pub fn as_text(&self) -> String {
        match self {
            PropValue::Str(s) | PropValue::Num(s) => s.clone(),
            PropValue::Bool(b) => b.to_string(),
        }
    }
}

/// `WITH (NAME = value, …)`: upper-cased names.
pub type Props = BTreeMap<String, PropValue>;

/// `EMIT CHANGES` / `EMIT FINAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// Every change, as it happens.
    Changes,
    /// Only final results of windows (part 2).
    Final,
}

/// A ksqlDB `SELECT`: the standard part as sqlparser's AST, the ksqlDB clauses beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct KsqlQuery {
    /// `SELECT … FROM … WHERE … [GROUP BY … HAVING …]`.
    pub query: Box<ast::Query>,
    /// `PARTITION BY` expressions.
    pub partition_by: Vec<Expr>,
    /// `EMIT …`.
    pub emit: Option<Emit>,
    /// `LIMIT n`.
    pub limit: Option<u64>,
    /// `WINDOW …`, as written (windows are the second SQL part's).
    pub window: Option<String>,
}

/// What `SHOW` / `LIST` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    /// `STREAMS`.
    Streams,
    /// `TABLES`.
    Tables,
    /// `QUERIES`.
    Queries,
    /// `TOPICS`.
    Topics,
    /// `FUNCTIONS`.
    Functions,
    /// `PROPERTIES`.
    Properties,
}

/// One ksqlDB statement.
#[derive(Debug, Clone, PartialEq)]
pub enum KsqlStatement {
    /// `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (cols) WITH (…)`.
    CreateSource {
        /// STREAM or TABLE.
        kind: SourceKind,
        /// Its name.
        name: String,
        /// `OR REPLACE`.
        or_replace: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// Columns (empty: read from the registry for AVRO / JSON_SR).
        columns: Vec<ColumnDef>,
        /// `WITH (…)`.
        props: Props,
    },
    /// `CREATE STREAM|TABLE name [WITH (…)] AS SELECT …`.
    CreateAs {
        /// STREAM or TABLE.
        kind: SourceKind,
        /// Its name.
        name: String,
        /// `OR REPLACE`.
        or_replace: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// `WITH (…)`.
        props: Props,
        /// The query.
        query: KsqlQuery,
    },
    /// `INSERT INTO name [WITH (…)] SELECT …`.
    InsertSelect {
        /// The stream written.
        target: String,
        /// `WITH (QUERY_ID = …)`.
        props: Props,
        /// The query.
        query: KsqlQuery,
    },
    /// `INSERT INTO name [(cols)] VALUES (…)`.
    InsertValues {
        /// The stream written.
        target: String,
        /// The columns given (all, in order, when absent).
        columns: Option<Vec<String>>,
        /// One expression per column.
        values: Vec<Expr>,
    },
    /// A push (`EMIT CHANGES`) or pull query.
    Query(KsqlQuery),
    /// `PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n]`.
    Print {
        /// The topic, as written (case kept).
        topic: String,
        /// `FROM BEGINNING`.
        from_beginning: bool,
        /// Print every n-th record.
        interval: Option<u64>,
        /// Stop after n records.
        limit: Option<u64>,
    },
    /// `SHOW|LIST … [EXTENDED]`.
    Show {
        /// What.
        what: ShowWhat,
        /// `EXTENDED`.
        extended: bool,
    },
    /// `DESCRIBE [EXTENDED] name` / `DESCRIBE STREAMS|TABLES [EXTENDED]`.
    Describe {
        /// The source; `None` with `all` for `DESCRIBE STREAMS|TABLES`.
        name: Option<String>,
        /// `DESCRIBE STREAMS` / `DESCRIBE TABLES`.
        all: Option<SourceKind>,
        /// `EXTENDED`.
        extended: bool,
    },
    /// `DESCRIBE FUNCTION name`.
    DescribeFunction(String),
    /// `EXPLAIN query_id` or `EXPLAIN statement`.
    Explain {
        /// A query id, when one is named.
        query_id: Option<String>,
        /// The statement, otherwise.
        statement: Option<Box<Statement>>,
    },
    /// `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]`.
    Drop {
        /// STREAM or TABLE.
        kind: SourceKind,
        /// Its name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `DELETE TOPIC`.
        delete_topic: bool,
    },
    /// `TERMINATE query_id` / `TERMINATE ALL` (`None`).
    Terminate(Option<String>),
    /// `SET 'name' = 'value'`.
    Set {
        /// Property name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `UNSET 'name'`.
    Unset(String),
    /// `RUN SCRIPT 'path'`.
    RunScript(String),
}

/// A statement with the text it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The statement's source text (without the final `;`).
    pub text: String,
    /// Where it starts.
    pub line: u64,
    /// What it is.
    pub kind: KsqlStatement,
}

/// Parses every `;`-separated statement of `sql`.
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParseError> {
    let dialect = KsqlDialect;
    let raw = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| ParseError {
            line: e.location.line.max(1),
            column: e.location.column.max(1),
            message: e.message,
        })?;
    let lines = LineIndex::new(sql);
    let mut out = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut depth = 0i32;
    for t in raw {
        match &t.token {
            Token::Whitespace(_) => continue,
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                if !current.is_empty() {
                    out.push(statement(sql, &lines, std::mem::take(&mut current))?);
                }
                depth = 0;
                continue;
            }
            _ => {}
        }
        current.push(t);
    }
    if !current.is_empty() {
        out.push(statement(sql, &lines, current)?);
    }
    Ok(out)
}

/// Parses exactly one statement.
pub fn parse_one(sql: &str) -> Result<Statement, ParseError> {
    let mut all = parse(sql)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(ParseError {
            line: 1,
            column: 1,
            message: "no statement".into(),
        }),
        _ => Err(ParseError {
            line: all[1].line,
            column: 1,
            message: "expected one statement, found several".into(),
        }),
    }
}

/// Byte offsets of line starts, to cut statement texts out by token location.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// The byte offset of a 1-based (line, column-in-chars) location.
    fn offset(&self, loc: Location) -> usize {
        let Some(&start) = self.starts.get((loc.line.max(1) - 1) as usize) else {
            return self.text.len();
        };
        let line = &self.text[start..];
        let col = loc.column.max(1) as usize - 1;
        start + line.char_indices().nth(col).map_or(line.len(), |(i, _)| i)
    }
}

fn statement(
    sql: &str,
    lines: &LineIndex<'_>,
    tokens: Vec<TokenWithSpan>,
) -> Result<Statement, ParseError> {
    let first = tokens[0].span.start;
    let last = tokens[tokens.len() - 1].span.end;
    let text = sql[lines.offset(first)..lines.offset(last)]
        .trim()
        .to_string();
    // Keep the tokens as written for the few places where case matters (PRINT's topic).
    let original = tokens.clone();
    let tokens: Vec<TokenWithSpan> = tokens.into_iter().map(normalise).collect();
    let mut c = Cursor {
        tokens,
        original,
        pos: 0,
        end: last,
    };
    let kind = c.statement()?;
    Ok(Statement {
        text,
        line: first.line,
        kind,
    })
}

/// Upper-cases an unquoted word (ksqlDB's identifier rule).
fn normalise(mut t: TokenWithSpan) -> TokenWithSpan {
    if let Token::Word(w) = &mut t.token
        && w.quote_style.is_none()
    {
        w.value = w.value.to_uppercase();
    }
    t
}

/// Converts sqlparser's error text (`… at Line: 3, Column: 7`) into a located error.
fn located(e: ParserError, fallback: Location) -> ParseError {
    let msg = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "statement nested too deeply".into(),
    };
    if let Some(i) = msg.rfind(" at Line: ") {
        let (head, tail) = msg.split_at(i);
        let nums: Vec<u64> = tail
            .trim_start_matches(" at Line: ")
            .split(", Column: ")
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        if let [line, column] = nums[..] {
            return ParseError {
                line,
                column,
                message: tidy(head),
            };
        }
    }
    ParseError {
        line: fallback.line.max(1),
        column: fallback.column.max(1),
        message: tidy(&msg),
    }
}

fn tidy(m: &str) -> String {
    m.replace("Expected: ", "expected ")
        .replace(", found: EOF", ", found the end of the statement")
        .replace(", found: ", ", found ")
}

struct Cursor {
    tokens: Vec<TokenWithSpan>,
    original: Vec<TokenWithSpan>,
    pos: usize,
    /// The end of the statement, for errors at its end.
    end: Location,
}

impl Cursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.token)
    }

    fn peek_at(&self, n: usize) -> Option<&Token> {
        self.tokens.get(self.pos + n).map(|t| &t.token)
    }

    fn here(&self) -> Location {
        self.tokens.get(self.pos).map_or(self.end, |t| t.span.start)
    }

    fn err<T>(&self, expected: &str) -> Result<T, ParseError> {
        let loc = self.here();
        let found = match self.original.get(self.pos).map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => format!("'{s}'"),
            Some(Token::Word(w)) => format!("'{}'", w.value),
            Some(t) => format!("'{t}'"),
            None => "the end of the statement".to_string(),
        };
        Err(ParseError {
            line: loc.line.max(1),
            column: loc.column.max(1),
            message: format!("expected {expected}, found {found}"),
        })
    }

    /// The keyword at the cursor, if the token is an unquoted word.
    fn word(&self) -> Option<&str> {
        match self.peek() {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.as_str()),
            _ => None,
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.word() == Some(kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        let all = kws.iter().enumerate().all(|(i, k)| {
            matches!(self.peek_at(i), Some(Token::Word(w)) if w.quote_style.is_none() && w.value == *k)
        });
        if all {
            self.pos += kws.len();
        }
        all
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            self.err(kw)
        }
    }

    fn eat(&mut self, t: &Token) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Token, what: &str) -> Result<(), ParseError> {
        if self.eat(t) { Ok(()) } else { self.err(what) }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn expect_end(&self) -> Result<(), ParseError> {
        if self.at_end() {
            Ok(())
        } else {
            self.err("the end of the statement")
        }
    }

    /// An identifier: a word (upper-cased unless quoted).
    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let v = w.value.clone();
                self.pos += 1;
                Ok(v)
            }
            _ => self.err(what),
        }
    }

    /// A string literal.
    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token::SingleQuotedString(s)) => {
                let v = s.clone();
                self.pos += 1;
                Ok(v)
            }
            _ => self.err(what),
        }
    }

    fn uint(&mut self, what: &str) -> Result<u64, ParseError> {
        match self.peek() {
            Some(Token::Number(n, _)) => match n.parse() {
                Ok(v) => {
                    self.pos += 1;
                    Ok(v)
                }
                Err(_) => self.err(what),
            },
            _ => self.err(what),
        }
    }

    /// Hands the tokens from the cursor on to sqlparser; returns its parser and the base.
    fn sub_parser(&self, upto: usize) -> Parser<'static> {
        Parser::new(&KsqlDialect).with_tokens_with_locations(self.tokens[self.pos..upto].to_vec())
    }

    fn statement(&mut self) -> Result<KsqlStatement, ParseError> {
        let Some(first) = self.word().map(str::to_string) else {
            return self.err("a statement (CREATE, SELECT, INSERT, SHOW, DESCRIBE, DROP, …)");
        };
        match first.as_str() {
            "CREATE" => self.create(),
            "SELECT" => {
                let q = self.query(self.tokens.len())?;
                Ok(KsqlStatement::Query(q))
            }
            "INSERT" => self.insert(),
            "SHOW" | "LIST" => {
                self.pos += 1;
                let what = match self.word() {
                    Some("STREAMS") => ShowWhat::Streams,
                    Some("TABLES") => ShowWhat::Tables,
                    Some("QUERIES") => ShowWhat::Queries,
                    Some("TOPICS") => ShowWhat::Topics,
                    Some("FUNCTIONS") => ShowWhat::Functions,
                    Some("PROPERTIES") => ShowWhat::Properties,
                    _ => {
                        return self
                            .err("STREAMS, TABLES, QUERIES, TOPICS, FUNCTIONS or PROPERTIES");
                    }
                };
                self.pos += 1;
                let extended = self.eat_kw("EXTENDED");
                self.expect_end()?;
                Ok(KsqlStatement::Show { what, extended })
            }
            "DESCRIBE" => self.describe(),
            "EXPLAIN" => {
                self.pos += 1;
                let is_statement = matches!(self.word(), Some("SELECT" | "CREATE" | "INSERT"))
                    && self.peek_at(1).is_some();
                if is_statement {
                    let start = self.pos;
                    let kind = self.statement()?;
                    let text = self.original[start..]
                        .iter()
                        .map(|t| t.token.to_string())
                        .collect::<Vec<_>>()
                        .join(" ");
                    Ok(KsqlStatement::Explain {
                        query_id: None,
                        statement: Some(Box::new(Statement {
                            text,
                            line: self.tokens[start].span.start.line,
                            kind,
                        })),
                    })
                } else {
                    let id = self.ident("a query id or a statement")?;
                    self.expect_end()?;
                    Ok(KsqlStatement::Explain {
                        query_id: Some(id),
                        statement: None,
                    })
                }
            }
            "DROP" => {
                self.pos += 1;
                let kind = self.source_kind()?;
                let if_exists = self.eat_kws(&["IF", "EXISTS"]);
                let name = self.ident("a stream or table name")?;
                let delete_topic = self.eat_kws(&["DELETE", "TOPIC"]);
                self.expect_end()?;
                Ok(KsqlStatement::Drop {
                    kind,
                    name,
                    if_exists,
                    delete_topic,
                })
            }
            "TERMINATE" => {
                self.pos += 1;
                if self.eat_kw("ALL") {
                    self.expect_end()?;
                    return Ok(KsqlStatement::Terminate(None));
                }
                let id = self.ident("a query id or ALL")?;
                self.expect_end()?;
                Ok(KsqlStatement::Terminate(Some(id)))
            }
            "SET" => {
                self.pos += 1;
                let name = self.string("a property name in quotes")?;
                self.expect(&Token::Eq, "'='")?;
                let value = self.string("a property value in quotes")?;
                self.expect_end()?;
                Ok(KsqlStatement::Set { name, value })
            }
            "UNSET" => {
                self.pos += 1;
                let name = self.string("a property name in quotes")?;
                self.expect_end()?;
                Ok(KsqlStatement::Unset(name))
            }
            "RUN" => {
                self.pos += 1;
                self.expect_kw("SCRIPT")?;
                let path = self.string("a file path in quotes")?;
                self.expect_end()?;
                Ok(KsqlStatement::RunScript(path))
            }
            "PRINT" => self.print(),
            _ => self.err("a statement (CREATE, SELECT, INSERT, SHOW, DESCRIBE, DROP, …)"),
        }
    }

    fn source_kind(&mut self) -> Result<SourceKind, ParseError> {
        if self.eat_kw("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat_kw("TABLE") {
            Ok(SourceKind::Table)
        } else {
            self.err("STREAM or TABLE")
        }
    }

    fn create(&mut self) -> Result<KsqlStatement, ParseError> {
        self.expect_kw("CREATE")?;
        let or_replace = self.eat_kws(&["OR", "REPLACE"]);
        let _source = self.eat_kw("SOURCE");
        let kind = self.source_kind()?;
        let if_not_exists = self.eat_kws(&["IF", "NOT", "EXISTS"]);
        let name = self.ident("a stream or table name")?;
        let mut columns = Vec::new();
        if self.eat(&Token::LParen) {
            loop {
                columns.push(self.column(kind)?);
                if self.eat(&Token::Comma) {
                    continue;
                }
                self.expect(&Token::RParen, "',' or ')'")?;
                break;
            }
        }
        let props = if self.eat_kw("WITH") {
            self.props()?
        } else {
            Props::new()
        };
        if self.eat_kw("AS") {
            if !columns.is_empty() {
                return self.err("no column list with AS SELECT");
            }
            let query = self.query(self.tokens.len())?;
            return Ok(KsqlStatement::CreateAs {
                kind,
                name,
                or_replace,
                if_not_exists,
                props,
                query,
            });
        }
        self.expect_end()?;
        Ok(KsqlStatement::CreateSource {
            kind,
            name,
            or_replace,
            if_not_exists,
            columns,
            props,
        })
    }

    fn column(&mut self, kind: SourceKind) -> Result<ColumnDef, ParseError> {
        let name = self.ident("a column name")?;
        let ty = self.sql_type()?;
        let key = match kind {
            SourceKind::Stream => self.eat_kw("KEY") || self.eat_kws(&["PRIMARY", "KEY"]),
            SourceKind::Table => self.eat_kws(&["PRIMARY", "KEY"]) || self.eat_kw("KEY"),
        };
        Ok(ColumnDef { name, ty, key })
    }

    /// Consumes a `>`; a `>>` (nested generics) is split in two.
    fn close_angle(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Some(Token::Gt) => {
                self.pos += 1;
                Ok(())
            }
            Some(Token::ShiftRight) => {
                let span = self.tokens[self.pos].span;
                let second = Location::new(span.start.line, span.start.column + 1);
                self.tokens[self.pos] = TokenWithSpan::new(Token::Gt, Span::new(second, span.end));
                self.original[self.pos] = self.tokens[self.pos].clone();
                Ok(())
            }
            _ => self.err("'>'"),
        }
    }

    fn sql_type(&mut self) -> Result<SqlType, ParseError> {
        let Some(w) = self.word().map(str::to_string) else {
            return self.err("a type");
        };
        self.pos += 1;
        Ok(match w.as_str() {
            "BOOLEAN" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Int,
            "BIGINT" => SqlType::BigInt,
            "DOUBLE" => SqlType::Double,
            "STRING" | "VARCHAR" => SqlType::String,
            "BYTES" => SqlType::Bytes,
            "TIMESTAMP" => SqlType::Timestamp,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            "DECIMAL" => {
                self.expect(&Token::LParen, "'(' and a precision")?;
                let p = self.uint("a precision")?;
                self.expect(&Token::Comma, "',' and a scale")?;
                let s = self.uint("a scale")?;
                self.expect(&Token::RParen, "')'")?;
                if !(1..=38).contains(&p) || s > p {
                    self.pos -= 1;
                    return self.err("a precision of 1 to 38 and a scale no larger than it");
                }
                SqlType::Decimal(p as u8, s as i8)
            }
            "ARRAY" => {
                self.expect(&Token::Lt, "'<'")?;
                let t = self.sql_type()?;
                self.close_angle()?;
                SqlType::Array(Box::new(t))
            }
            "MAP" => {
                self.expect(&Token::Lt, "'<'")?;
                let k = self.sql_type()?;
                self.expect(&Token::Comma, "','")?;
                let v = self.sql_type()?;
                self.close_angle()?;
                if k != SqlType::String {
                    return self.err("MAP keys of type STRING");
                }
                SqlType::Map(Box::new(k), Box::new(v))
            }
            "STRUCT" => {
                self.expect(&Token::Lt, "'<'")?;
                let mut fields = Vec::new();
                if !matches!(self.peek(), Some(Token::Gt | Token::ShiftRight)) {
                    loop {
                        let n = self.ident("a field name")?;
                        let t = self.sql_type()?;
                        fields.push((n, t));
                        if !self.eat(&Token::Comma) {
                            break;
                        }
                    }
                }
                self.close_angle()?;
                SqlType::Struct(fields)
            }
            _ => {
                self.pos -= 1;
                return self.err(
                    "a type (BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL, STRING, BYTES, TIMESTAMP, DATE, TIME, ARRAY, MAP, STRUCT)",
                );
            }
        })
    }

    fn props(&mut self) -> Result<Props, ParseError> {
        self.expect(&Token::LParen, "'('")?;
        let mut props = Props::new();
        loop {
            let name = self.ident("a property name")?.to_uppercase();
            self.expect(&Token::Eq, "'='")?;
            let value = match self.peek().cloned() {
                Some(Token::SingleQuotedString(s)) => PropValue::Str(s),
                Some(Token::Number(n, _)) => PropValue::Num(n),
                Some(Token::Minus) => {
                    self.pos += 1;
                    match self.peek().cloned() {
                        Some(Token::Number(n, _)) => PropValue::Num(format!("-{n}")),
                        _ => return self.err("a number"),
                    }
                }
                Some(Token::Word(w)) if w.quote_style.is_none() && w.value == "TRUE" => {
                    PropValue::Bool(true)
                }
                Some(Token::Word(w)) if w.quote_style.is_none() && w.value == "FALSE" => {
                    PropValue::Bool(false)
                }
                _ => return self.err("a value ('text', a number, true or false)"),
            };
            self.pos += 1;
            if props.insert(name.clone(), value).is_some() {
                self.pos -= 3;
                return self.err(&format!("{name} only once"));
            }
            if self.eat(&Token::Comma) {
                continue;
            }
            self.expect(&Token::RParen, "',' or ')'")?;
            return Ok(props);
        }
    }

    fn insert(&mut self) -> Result<KsqlStatement, ParseError> {
        self.expect_kw("INSERT")?;
        self.expect_kw("INTO")?;
        let target = self.ident("a stream name")?;
        let mut columns = None;
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let mut cols = Vec::new();
            loop {
                cols.push(self.ident("a column name")?);
                if self.eat(&Token::Comma) {
                    continue;
                }
                self.expect(&Token::RParen, "',' or ')'")?;
                break;
            }
            columns = Some(cols);
        }
        if self.eat_kw("VALUES") {
            self.expect(&Token::LParen, "'('")?;
            // Find the matching ')'.
            let mut depth = 1;
            let mut i = self.pos;
            while i < self.tokens.len() {
                match self.tokens[i].token {
                    Token::LParen | Token::LBracket => depth += 1,
                    Token::RParen | Token::RBracket => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            if i >= self.tokens.len() {
                self.pos = self.tokens.len();
                return self.err("')'");
            }
            let mut p = self.sub_parser(i);
            let values = p
                .parse_comma_separated(Parser::parse_expr)
                .map_err(|e| located(e, self.tokens[i].span.start))?;
            if p.peek_token_ref().token != Token::EOF {
                self.pos += p.index();
                return self.err("',' or ')'");
            }
            self.pos = i + 1;
            self.expect_end()?;
            return Ok(KsqlStatement::InsertValues {
                target,
                columns,
                values,
            });
        }
        if columns.is_some() {
            return self.err("VALUES");
        }
        let props = if self.eat_kw("WITH") {
            self.props()?
        } else {
            Props::new()
        };
        if !self.is_kw("SELECT") {
            return self.err("SELECT or VALUES");
        }
        let query = self.query(self.tokens.len())?;
        Ok(KsqlStatement::InsertSelect {
            target,
            props,
            query,
        })
    }

    fn describe(&mut self) -> Result<KsqlStatement, ParseError> {
        self.expect_kw("DESCRIBE")?;
        let mut extended = self.eat_kw("EXTENDED");
        if self.eat_kw("FUNCTION") {
            let name = self.ident("a function name")?;
            self.expect_end()?;
            return Ok(KsqlStatement::DescribeFunction(name));
        }
        let all = if self.is_kw("STREAMS") && matches!(self.peek_at(1), None | Some(Token::Word(_)))
        {
            self.pos += 1;
            Some(SourceKind::Stream)
        } else if self.is_kw("TABLES") && matches!(self.peek_at(1), None | Some(Token::Word(_))) {
            self.pos += 1;
            Some(SourceKind::Table)
        } else {
            None
        };
        let name = if all.is_none() {
            Some(self.ident("a stream or table name, STREAMS, TABLES or FUNCTION")?)
        } else {
            None
        };
        extended |= self.eat_kw("EXTENDED");
        self.expect_end()?;
        Ok(KsqlStatement::Describe {
            name,
            all,
            extended,
        })
    }

    fn print(&mut self) -> Result<KsqlStatement, ParseError> {
        self.expect_kw("PRINT")?;
        let topic = match self.original.get(self.pos).map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => s.clone(),
            Some(Token::Word(w)) => {
                // An unquoted name may contain dots and dashes: join the tokens as written.
                let mut name = w.value.clone();
                while matches!(
                    self.original.get(self.pos + 1).map(|t| &t.token),
                    Some(Token::Period | Token::Minus)
                ) && matches!(
                    self.original.get(self.pos + 2).map(|t| &t.token),
                    Some(Token::Word(_) | Token::Number(..))
                ) {
                    name.push_str(&self.original[self.pos + 1].token.to_string());
                    name.push_str(&self.original[self.pos + 2].token.to_string());
                    self.pos += 2;
                }
                name
            }
            _ => return self.err("a topic name"),
        };
        self.pos += 1;
        let from_beginning = self.eat_kws(&["FROM", "BEGINNING"]);
        let mut interval = None;
        let mut limit = None;
        loop {
            if self.eat_kw("INTERVAL") || self.eat_kw("SAMPLE") {
                interval = Some(self.uint("a number")?);
            } else if self.eat_kw("LIMIT") {
                limit = Some(self.uint("a number")?);
            } else {
                break;
            }
        }
        self.expect_end()?;
        Ok(KsqlStatement::Print {
            topic,
            from_beginning,
            interval,
            limit,
        })
    }

    /// A ksqlDB SELECT from the cursor up to `upto`: cuts out WINDOW, PARTITION BY, EMIT
    /// and LIMIT at depth 0, then parses the rest with sqlparser.
    fn query(&mut self, upto: usize) -> Result<KsqlQuery, ParseError> {
        let start = self.pos;
        let mut keep: Vec<TokenWithSpan> = Vec::new();
        let mut partition: Option<(usize, usize)> = None;
        let mut window: Option<(usize, usize)> = None;
        let mut emit = None;
        let mut limit = None;
        let mut depth = 0i32;
        let mut i = start;
        let toks = self.tokens.clone();
        let kw_at = |i: usize, k: &str| {
            matches!(toks.get(i).map(|t| &t.token),
                Some(Token::Word(w)) if w.quote_style.is_none() && w.value == k)
        };
        let clause_end = |from: usize, stops: &[&str]| {
            let mut d = 0i32;
            let mut j = from;
            while j < upto {
                match &toks[j].token {
                    Token::LParen | Token::LBracket => d += 1,
                    Token::RParen | Token::RBracket => d -= 1,
                    Token::Word(w)
                        if d == 0
                            && w.quote_style.is_none()
                            && stops.contains(&w.value.as_str()) =>
                    {
                        // `PARTITION BY`, `GROUP BY` and `EMIT CHANGES` are two-word stops.
                        if matches!(w.value.as_str(), "PARTITION" | "GROUP") && !kw_at(j + 1, "BY")
                        {
                        } else {
                            return j;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            upto
        };
        let mut seen_from = false;
        while i < upto {
            let t = &toks[i];
            match &t.token {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RParen | Token::RBracket => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                if kw_at(i, "FROM") {
                    seen_from = true;
                }
                if seen_from && kw_at(i, "WINDOW") {
                    let end = clause_end(
                        i + 1,
                        &["WHERE", "GROUP", "PARTITION", "HAVING", "EMIT", "LIMIT"],
                    );
                    window = Some((i + 1, end));
                    i = end;
                    continue;
                }
                if kw_at(i, "PARTITION") && kw_at(i + 1, "BY") {
                    let end = clause_end(i + 2, &["HAVING", "EMIT", "LIMIT"]);
                    if end == i + 2 {
                        self.pos = end;
                        return self.err("an expression after PARTITION BY");
                    }
                    partition = Some((i + 2, end));
                    i = end;
                    continue;
                }
                if kw_at(i, "EMIT") {
                    if kw_at(i + 1, "CHANGES") {
                        emit = Some(Emit::Changes);
                    } else if kw_at(i + 1, "FINAL") {
                        emit = Some(Emit::Final);
                    } else {
                        self.pos = i + 1;
                        return self.err("CHANGES or FINAL after EMIT");
                    }
                    i += 2;
                    continue;
                }
                if kw_at(i, "LIMIT") {
                    self.pos = i + 1;
                    limit = Some(self.uint("a number after LIMIT")?);
                    i += 2;
                    continue;
                }
            }
            keep.push(t.clone());
            i += 1;
        }
        let mut p = Parser::new(&KsqlDialect).with_tokens_with_locations(keep);
        let query = p.parse_query().map_err(|e| located(e, self.end))?;
        let next = p.peek_token();
        if next.token != Token::EOF {
            return Err(ParseError {
                line: next.span.start.line.max(1),
                column: next.span.start.column.max(1),
                message: format!("unexpected '{}' after the query", next.token),
            });
        }
        let partition_by = match partition {
            Some((a, b)) => {
                self.pos = a;
                let mut p = self.sub_parser(b);
                let exprs = p.parse_comma_separated(Parser::parse_expr).map_err(|e| {
                    located(e, self.tokens.get(b).map_or(self.end, |t| t.span.start))
                })?;
                if p.peek_token_ref().token != Token::EOF {
                    self.pos = a + p.index();
                    return self.err("',' or the end of PARTITION BY");
                }
                exprs
            }
            None => Vec::new(),
        };
        let window = window.map(|(a, b)| {
            self.original[a..b]
                .iter()
                .map(|t| t.token.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        });
        self.pos = upto;
        Ok(KsqlQuery {
            query,
            partition_by,
            emit,
            limit,
            window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> KsqlStatement {
        match parse_one(sql) {
            Ok(s) => s.kind,
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    fn err(sql: &str) -> ParseError {
        match parse_one(sql) {
            Ok(s) => panic!("{sql}: parsed as {:?}", s.kind),
            Err(e) => e,
        }
    }

    #[test]
    fn create_stream_with_columns_keys_and_props() {
        let s = one(
            "create stream telemetry (vin string key, `speedKmh` double, loc struct<lat double, lon double>, \
             tags array<array<string>>, m map<string, int>, price decimal(10, 2)) \
             with (kafka_topic='telemetry.raw', value_format='JSON', partitions=4, wrap_single_value=false)",
        );
        let KsqlStatement::CreateSource {
            kind,
            name,
            columns,
            props,
            ..
        } = s
        else {
            panic!("{s:?}")
        };
        assert_eq!(kind, SourceKind::Stream);
        assert_eq!(name, "TELEMETRY");
        assert_eq!(
            columns[0],
            ColumnDef {
                name: "VIN".into(),
                ty: SqlType::String,
                key: true
            }
        );
        assert_eq!(columns[1].name, "speedKmh");
        assert_eq!(
            columns[2].ty,
            SqlType::Struct(vec![
                ("LAT".into(), SqlType::Double),
                ("LON".into(), SqlType::Double)
            ])
        );
        assert_eq!(
            columns[3].ty,
            SqlType::Array(Box::new(SqlType::Array(Box::new(SqlType::String))))
        );
        assert_eq!(columns[5].ty, SqlType::Decimal(10, 2));
        assert_eq!(props["KAFKA_TOPIC"], PropValue::Str("telemetry.raw".into()));
        assert_eq!(props["PARTITIONS"], PropValue::Num("4".into()));
        assert_eq!(props["WRAP_SINGLE_VALUE"], PropValue::Bool(false));
    }

    #[test]
    fn select_clauses_are_cut_out_and_the_rest_parsed() {
        let s = one(
            "SELECT vin, loc->lat AS lat, mask(card) FROM payments WHERE amount > 10 \
             PARTITION BY vin EMIT CHANGES LIMIT 5",
        );
        let KsqlStatement::Query(q) = s else { panic!() };
        assert_eq!(q.emit, Some(Emit::Changes));
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.partition_by.len(), 1);
        let text = q.query.to_string();
        assert!(
            text.contains("LOC['LAT'] AS LAT") || text.contains("LOC.'LAT'"),
            "{text}"
        );
        assert!(text.contains("MASK(CARD)"), "{text}");
        assert!(text.contains("WHERE AMOUNT > 10"), "{text}");
    }

    #[test]
    fn several_statements_keep_their_text() {
        let all =
            parse("SHOW STREAMS;\n  DESCRIBE EXTENDED s ;\nSET 'auto.offset.reset' = 'earliest';")
                .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].text, "DESCRIBE EXTENDED s");
        assert_eq!(all[1].line, 2);
        assert_eq!(
            all[2].kind,
            KsqlStatement::Set {
                name: "auto.offset.reset".into(),
                value: "earliest".into()
            }
        );
    }

    #[test]
    fn errors_name_line_column_and_expectation() {
        // `FORM` reads as an alias of `a`; the stray name after it is the error.
        let e = err("SELECT a\nFORM s EMIT CHANGES");
        assert_eq!((e.line, e.column), (2, 6), "{e}");
        assert!(e.message.contains("unexpected 'S'"), "{e}");
        let e = err("SELECT a, FROM s");
        assert_eq!((e.line, e.column), (1, 16), "{e}");
        let e = err("CREATE STREAM s (a STRNG) WITH (kafka_topic='t')");
        assert_eq!((e.line, e.column), (1, 20), "{e}");
        assert!(e.message.contains("a type"), "{e}");
        let e = err("CREATE STREAM s (a INT WITH (kafka_topic='t')");
        assert!(e.message.contains("',' or ')'"), "{e}");
        let e = err("SELECT * FROM s EMIT SOMETHING");
        assert!(e.message.contains("CHANGES or FINAL"), "{e}");
        let e = err("DROP VIEW x");
        assert!(
            e.to_string()
                .starts_with("line 1:6: expected STREAM or TABLE"),
            "{e}"
        );
    }

    #[test]
    fn insert_values_print_drop_terminate() {
        let s = one("INSERT INTO s (a, b) VALUES (1, 'x')");
        let KsqlStatement::InsertValues {
            target,
            columns,
            values,
        } = s
        else {
            panic!()
        };
        assert_eq!(target, "S");
        assert_eq!(columns, Some(vec!["A".into(), "B".into()]));
        assert_eq!(values.len(), 2);
        assert_eq!(
            one("PRINT telemetry.raw FROM BEGINNING LIMIT 3"),
            KsqlStatement::Print {
                topic: "telemetry.raw".into(),
                from_beginning: true,
                interval: None,
                limit: Some(3)
            }
        );
        assert_eq!(
            one("DROP STREAM IF EXISTS s DELETE TOPIC"),
            KsqlStatement::Drop {
                kind: SourceKind::Stream,
                name: "S".into(),
                if_exists: true,
                delete_topic: true
            }
        );
        assert_eq!(one("TERMINATE ALL"), KsqlStatement::Terminate(None));
        assert_eq!(
            one("terminate CSAS_X_1"),
            KsqlStatement::Terminate(Some("CSAS_X_1".into()))
        );
    }

    #[test]
    fn create_as_select_and_insert_select() {
        let s = one(
            "CREATE STREAM clean WITH (kafka_topic='clean', value_format='AVRO') AS SELECT vin, mask_keep_right(card, 4) AS card FROM payments EMIT CHANGES",
        );
        let KsqlStatement::CreateAs {
            name, props, query, ..
        } = s
        else {
            panic!()
        };
        assert_eq!(name, "CLEAN");
        assert_eq!(props["VALUE_FORMAT"], PropValue::Str("AVRO".into()));
        assert_eq!(query.emit, Some(Emit::Changes));
        let s = one("INSERT INTO clean SELECT * FROM payments2 EMIT CHANGES");
        assert!(matches!(s, KsqlStatement::InsertSelect { .. }));
    }
}
