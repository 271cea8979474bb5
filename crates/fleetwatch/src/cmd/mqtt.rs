//! `fleetwatch mqtt …`: helpers for the MQTT proxy.

use anyhow::Context;
use clap::Subcommand;
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Add or replace a user in an `mqtt.password_file` (argon2id hash); the password is
    /// the first line of stdin, never an argument.
    Passwd {
        /// The password file (created with mode 0600 if missing).
        #[arg(long, env = "FLEETWATCH_MQTT_PASSWORD_FILE")]
        file: PathBuf,
        /// The username.
        username: String,
    },
}

/// Runs it.
pub fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Passwd { file, username } => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let password = line.trim_end_matches(['\n', '\r']);
            let replaced = matches!(
                fleetwatch_ingest::auth::write_password_file_entry(&file, &username, password)?,
                fleetwatch_ingest::auth::EntryWritten::Replaced
            );
            let verb = if replaced { "replaced" } else { "added" };
            let prep = if replaced { "in" } else { "to" };
            eprintln!("{verb} {username} {prep} {}", file.display());
            Ok(())
        }
    }
}
