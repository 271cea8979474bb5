//! `fleetwatch config …`

use clap::Subcommand;
use fleetwatch::config::Config;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Print every configuration key with its default value (TOML).
    Defaults,
}

/// Runs it.
pub fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Defaults => {
            print!("{}", Config::defaults_toml()?);
            Ok(())
        }
    }
}
