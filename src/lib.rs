//! pipit: a small, fast MQTT broker for the edge.

pub mod config;
pub mod wire;
