//! `fleetwatch sql` against a running `serve`: `-e` and `-f` (statements, client-side `SET`,
//! a push query with LIMIT shown as a table), `--output json`, a syntax error's position and
//! exit code, and the shell reading a multi-line statement from a piped stdin.

use fleetwatch_testkit::server::{Server, run_cli};
use serde_json::Value;

const CREATE: &str = "CREATE STREAM pay (vin STRING KEY, amount DOUBLE) \
                      WITH (kafka_topic='pay.sql', value_format='JSON', partitions=1);";

#[test]
fn sql_cli_runs_statements_files_json_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);

    // -e, found through server.json: a push query over earlier inserts, as a table.
    let sql = format!(
        "{CREATE} SET 'auto.offset.reset'='earliest';\n\
         INSERT INTO pay (vin, amount) VALUES ('V1', 12.5);\n\
         INSERT INTO pay (vin, amount) VALUES ('V2', 3.25);\n\
         SELECT vin, amount FROM pay EMIT CHANGES LIMIT 2;"
    );
    let (ok, out, err) = run_cli(&data, &["sql", "-e", &sql], "");
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Stream created"), "{out}");
    assert!(out.contains("Successfully changed local property 'auto.offset.reset'"));
    let row = |v: &str, a: &str| {
        out.lines()
            .any(|l| l.starts_with(&format!("|{v} ")) && l.contains(&format!("|{a} ")))
    };
    assert!(
        out.lines()
            .any(|l| l.starts_with("|VIN ") && l.contains("|AMOUNT ")),
        "{out}"
    );
    assert!(row("V1", "12.5") && row("V2", "3.25"), "{out}");
    assert!(out.contains("Limit Reached"), "{out}");

    // -f with --server: comments, a statement over lines, SHOW and DESCRIBE as tables.
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        "-- a script; with a semicolon in a comment\n\
         SHOW STREAMS;\n\
         DESCRIBE\n  pay; /* trailing; */\n\
         SELECT * FROM pay WHERE amount > 10;\n",
    )
    .unwrap();
    let url = format!("http://{}", s.addr("ksql"));
    let (ok, out, err) = run_cli(
        &data,
        &["sql", "--server", &url, "-f", script.to_str().unwrap()],
        "",
    );
    assert!(ok, "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(" PAY ") && l.contains("| pay.sql ")),
        "{out}"
    );
    assert!(out.contains(" VIN    | VARCHAR(STRING)  (key)"), "{out}");
    assert!(
        row_contains(&out, "V1") && !row_contains(&out, "V2"),
        "{out}"
    );
    assert!(out.contains("Query Completed"), "{out}");

    // --output json: the entities, then the /query elements one per line.
    let (ok, out, err) = run_cli(
        &data,
        &[
            "sql",
            "--output",
            "json",
            "-e",
            "SHOW STREAMS; SELECT vin FROM pay WHERE vin = 'V2';",
        ],
        "",
    );
    assert!(ok, "{out}\n{err}");
    let mut de = serde_json::Deserializer::from_str(&out).into_iter::<Value>();
    let entities = de.next().unwrap().unwrap();
    assert_eq!(entities[0]["@type"], "streams", "{out}");
    assert_eq!(entities[0]["streams"][0]["name"], "PAY");
    let rest: Vec<Value> = de.map(Result::unwrap).collect();
    assert!(
        rest[0]["header"]["schema"]
            .as_str()
            .unwrap()
            .contains("`VIN`")
    );
    assert_eq!(rest[1]["row"]["columns"], serde_json::json!(["V2"]));
    assert_eq!(rest.last().unwrap()["finalMessage"], "Query Completed");

    // A syntax error: ksqlDB's message with its position, non-zero, later statements skipped.
    let (ok, out, err) = run_cli(&data, &["sql", "-e", "SELEC * FROM pay; SHOW STREAMS;"], "");
    assert!(!ok);
    assert!(err.contains("line 1:1:") && err.contains("SELEC"), "{err}");
    assert!(!out.contains("Stream Name"), "{out}");
    let (ok, _, err) = run_cli(
        &data,
        &["sql", "-e", "SHOW STREAMS;\n  SELECT * FRM pay;"],
        "",
    );
    assert!(!ok);
    assert!(err.contains("line 2:12:"), "{err}");
    let (ok, _, err) = run_cli(&data, &["sql", "-e", "DESCRIBE nope;"], "");
    assert!(!ok);
    assert!(err.contains("NOPE does not exist"), "{err}");
}

fn row_contains(out: &str, v: &str) -> bool {
    out.lines().any(|l| l.starts_with(&format!("|{v} ")))
}

#[test]
fn sql_cli_shell_reads_multi_line_statements_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _s = Server::start(&data, &[]);
    let stdin = "CREATE STREAM cars (vin STRING KEY,\n\
                 \x20 speed DOUBLE)\n\
                 \x20 WITH (kafka_topic='cars.sql',\n\
                 \x20       value_format='JSON', partitions=1);\n\
                 SET 'auto.offset.reset'='earliest'; INSERT INTO cars (vin, speed)\n\
                 \x20 VALUES ('C1', 88.0);\n\
                 SELECT vin, speed FROM cars\n\
                 \x20 EMIT CHANGES LIMIT 1;\n\
                 SHOW STREAMS;\n\
                 exit\n\
                 SHOW TOPICS;\n";
    let (ok, out, err) = run_cli(&data, &["sql", "--no-history"], stdin);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Stream created"), "{out}");
    assert!(row_contains(&out, "C1") && out.contains("|88.0 "), "{out}");
    assert!(out.lines().any(|l| l.starts_with(" CARS ")), "{out}");
    // `exit` ends the shell: the statement after it does not run.
    assert!(!out.contains("Partition Replicas"), "{out}");

    // An error in a piped script: reported, the shell goes on, and the exit code says so.
    let (ok, out, err) = run_cli(&data, &["sql"], "SHOW TABLE;\nSHOW STREAMS;\n");
    assert!(!ok);
    assert!(err.contains("line 1:"), "{err}");
    assert!(out.lines().any(|l| l.starts_with(" CARS ")), "{out}");
}
