//! `fleetwatch topics …`

use crate::cmd::Global;
use clap::Subcommand;
use fleetwatch::cli;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(long, short = 'p', default_value_t = 1, env = "FLEETWATCH_PARTITIONS")]
        partitions: i32,
        /// Topic setting NAME=VALUE (Kafka names: retention.ms, retention.bytes,
        /// cleanup.policy, max.message.bytes, segment.bytes); repeatable.
        #[arg(
            long = "topic-config",
            value_name = "NAME=VALUE",
            env = "FLEETWATCH_TOPIC_CONFIG",
            value_delimiter = ','
        )]
        settings: Vec<String>,
    },
    /// List topic names.
    List,
    /// Show a topic's partitions, offsets and settings (JSON).
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        name: String,
    },
}

/// Runs it.
pub fn run(g: &Global, cmd: Cmd) -> anyhow::Result<()> {
    let config = g.config()?;
    if let Some(r) = g.remote(&config) {
        return crate::cmd::runtime(false)?.block_on(async move {
            match cmd {
                Cmd::Create {
                    name,
                    partitions,
                    settings,
                } => r.topics_create(&name, partitions, &settings).await,
                Cmd::List => r.topics_list().await,
                Cmd::Describe { name } => r.topics_describe(&name).await,
                Cmd::Delete { name } => r.topics_delete(&name).await,
            }
        });
    }
    crate::cmd::with_log(&config, |log| async move {
        let log = &*log;
        match cmd {
            Cmd::Create {
                name,
                partitions,
                settings,
            } => cli::topics_create(log, &name, partitions, &settings).await,
            Cmd::List => {
                for t in log.list_topics().await? {
                    println!("{t}");
                }
                Ok(())
            }
            Cmd::Describe { name } => cli::topics_describe(log, &name).await,
            Cmd::Delete { name } => {
                fleetwatch_core::check_client_write(&name, "delete")?;
                log.delete_topic(&name).await?;
                println!("deleted topic {name}");
                Ok(())
            }
        }
    })
}
