//! fleetwatch's MQTT proxy: cars publish and subscribe over MQTT 3.1.1 and 5.0, and every
//! QoS 1/2 publish is acknowledged only once it is durable in the log.
//!
//! - [`packet`]: the one internal packet model (with the protocol version), converted from
//!   and to the wire by `rmqtt-codec` at the edge;
//! - [`mapping`]: MQTT topics ↔ log topics and record keys (`[[mqtt.publish_map]]`,
//!   `[[mqtt.subscribe_map]]`);
//! - [`config`]: `[mqtt]`.

pub mod appender;
pub mod config;
pub mod mapping;
pub mod packet;

pub use config::MqttConfig;
