//! fleetwatch's MQTT proxy: cars publish and subscribe over MQTT 3.1.1 and 5.0, and every
//! QoS 1/2 publish is acknowledged only once it is durable in the log.
//!
//! - [`packet`]: the one internal packet model (with the protocol version), converted from
//!   and to the wire by `rmqtt-codec` at the edge;
//! - [`conn`]: one connection — CONNECT, publishes in (acknowledged when durable),
//!   subscriptions, deliveries, keep-alive, will;
//! - [`appender`]: group commit of every connection's publishes, one lane per partition;
//! - [`session`]: client sessions, takeover, the QoS 2 packet-id set;
//! - [`deliver`]: subscribe back (pumps from log topics, persistent sessions as consumer
//!   groups, retained messages);
//! - [`mapping`]: MQTT topics ↔ log topics and record keys (`[[mqtt.publish_map]]`,
//!   `[[mqtt.subscribe_map]]`);
//! - [`bridge`]: subscribes to an existing broker and appends what it delivers (acknowledged
//!   upstream once durable), over the small MQTT [`client`];
//! - [`http`]: `POST /ingest/{mqtt/topic}` for devices without MQTT, mapped the same way;
//! - [`auth`], [`topic`]: logins, ACLs, topic names and filters;
//! - [`server`]: the listeners (plain and TLS) as `serve` components;
//! - [`metrics`], [`config`] (`[mqtt]`).

pub mod appender;
pub mod auth;
pub mod bridge;
pub mod client;
pub mod config;
pub mod conn;
pub mod deliver;
pub mod http;
pub mod mapping;
pub mod metrics;
pub mod packet;
pub mod server;
pub mod session;
pub mod topic;

pub use config::MqttConfig;
pub use server::{MqttServer, Shared, load_tls};
