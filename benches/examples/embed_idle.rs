//! The smallest useful embedder, for the README's size and idle-memory figures: a broker on
//! its own thread (one loopback listener at a port the system picks) and one in-process
//! client subscribed to `sensors/#`, doing nothing until its standard input closes.
//!
//! ```text
//! cargo build --release --example embed_idle [--no-default-features]
//! sleep 5 | target/release/examples/embed_idle   # prints `ready PID`, then idles
//! ```
//!
//! It prints one line, `ready PID`, once the client's SUBSCRIBE is acknowledged, so a
//! script can read `VmRSS` from `/proc/PID/status` at rest; then it shuts the broker down
//! and joins its thread when standard input reaches end of file.

use std::error::Error;
use std::io::{Read, Write};

use pipit::embed::{LocalOptions, loopback_config};
use pipit::wire::{QoS, SubscriptionOptions};

fn main() -> Result<(), Box<dyn Error>> {
    let broker = pipit::Broker::builder(loopback_config()).spawn()?;
    let mut client = broker.handle.local_client(LocalOptions::new("display"))?;
    client.subscribe(&[("sensors/#", SubscriptionOptions::at(QoS::AtLeastOnce))])?;
    writeln!(std::io::stdout(), "ready {}", std::process::id())?;
    std::io::stdout().flush()?;
    // Idle until whoever started us is done measuring.
    std::io::stdin().read_to_end(&mut Vec::new())?;
    client.disconnect();
    broker.handle.shutdown();
    broker
        .thread
        .join()
        .map_err(|_| "the broker thread panicked")??;
    Ok(())
}
