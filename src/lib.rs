//! pipit: a small, fast MQTT broker for the edge.

pub mod auth;
pub mod config;
pub mod passwd;
pub mod wire;
