//! # fleetwatch-server — what every fleetwatch server has in common
//!
//! Owns the shape of "a server or task that `serve` starts" ([`Component`]) and the
//! supervisor that runs a list of them and stops everything when any one ends or panics
//! ([`supervise`]); listeners with a connection cap, a first-byte/header timeout and an idle
//! timeout, with refusals counted ([`conn`]); and HTTP serving over hyper with the layers
//! every HTTP API gets from one function — request counter and latency histogram labelled
//! by server, header-size limit, tracing, JSON-shaped 405/413/431 answers ([`http`]).
//!
//! It must not know any protocol's routes or any component: the REST Proxy, the Schema
//! Registry and later MQTT, ksqlDB and model serving build on it; the app lists them.

pub mod component;
pub mod conn;
pub mod http;

pub use component::{BoxError, Component, ComponentExit, Task, supervise};
pub use conn::{ConnMetrics, ConnectionLimits};
