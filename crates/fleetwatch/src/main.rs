//! The `fleetwatch` command: parses arguments and dispatches to one module per subcommand
//! (`cmd/`), which call the `fleetwatch` library.

mod cmd;

/// mimalloc: the log's read path hands out slices of large, short-lived buffers; glibc's
/// malloc returns those to the OS and page-faults them back on every read (replay ran 4×
/// slower with it, measured by `fleetwatch bench log`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// fleetwatch: streaming machine learning for connected fleets.
#[derive(Parser, Debug)]
#[command(name = "fleetwatch", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: cmd::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: the REST Proxy API, the Schema Registry, the MQTT proxy, /health and
    /// /metrics over the configured log.
    Serve(cmd::serve::ServeArgs),
    /// Create, list, describe or delete topics.
    Topics {
        #[command(subcommand)]
        cmd: cmd::topics::Cmd,
    },
    /// Append stdin lines to a topic, one record per line.
    Produce(cmd::produce::ProduceArgs),
    /// Print records of a topic as JSON lines.
    Consume(cmd::consume::ConsumeArgs),
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        cmd: cmd::config::Cmd,
    },
    /// MQTT proxy helpers (password file).
    Mqtt {
        #[command(subcommand)]
        cmd: cmd::mqtt::Cmd,
    },
    /// Simulate a fleet: telemetry and payments with labelled anomalies, sent over MQTT,
    /// HTTP, into the log or to a file.
    Sim(Box<cmd::sim::SimArgs>),
    /// A ksqlDB-style SQL shell on the server's ksqlDB API (interactive, `-e` or `-f`).
    Sql(cmd::sql::SqlArgs),
    /// Machine learning: train models by replaying a topic, evaluate them, and manage the
    /// registry (versions, aliases, promote, rollback, delete, export).
    Model {
        #[command(subcommand)]
        cmd: cmd::model::Cmd,
    },
    /// Benchmarks (JSON on stdout, a table on stderr).
    Bench {
        #[command(subcommand)]
        cmd: cmd::bench::Cmd,
    },
}

fn main() {
    let cli = Cli::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&cli.global.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "fleetwatch: error: --log-level {:?} is not a log filter ({e}); use e.g. info, debug or fleetwatch_log=debug",
                cli.global.log_level
            );
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(cli) {
        // One line: the error and its causes.
        eprintln!("fleetwatch: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Serve(a) => cmd::serve::run(g, a),
        Command::Topics { cmd } => cmd::topics::run(g, cmd),
        Command::Produce(a) => cmd::produce::run(g, a),
        Command::Consume(a) => cmd::consume::run(g, a),
        Command::Config { cmd } => cmd::config::run(cmd),
        Command::Mqtt { cmd } => cmd::mqtt::run(cmd),
        Command::Sim(a) => cmd::sim::run(g, *a),
        Command::Sql(a) => cmd::sql::run(g, a),
        Command::Model { cmd } => cmd::model::run(g, cmd),
        Command::Bench { cmd } => cmd::bench::run(cmd),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
