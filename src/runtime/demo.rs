//! Demo mode for `device: sim` with `demo: true`: the simulator produces realistic
//! traffic (an SMS from the allowed number every few seconds, now and then a network
//! blip or a signal change), so the first `atmate run` shows rules firing within
//! seconds. Never used for real sticks.

use std::time::Duration;

use crate::config::SimOptions;
use crate::sim::{InjectSms, SimConfig, SimHandle};

/// The simulator settings for a `device: sim` modem.
pub(crate) fn sim_config(opts: &SimOptions) -> SimConfig {
    let mut c = SimConfig {
        pin: opts.pin.as_ref().map(|p| p.expose().to_owned()),
        csq: opts.csq,
        ..SimConfig::default()
    };
    c.capacities.sm = opts.capacity.sm;
    c.capacities.me = opts.capacity.me;
    c.capacities.sr = opts.capacity.sr;
    c
}

/// The demo feeder task.
pub(crate) async fn feed(sim: SimHandle, from: String) {
    let script: [(u64, &str); 6] = [
        (4, "ping"),
        (8, "status"),
        (8, "hello atmate"),
        (10, "ping"),
        (12, "balance"),
        (15, "status"),
    ];
    let mut round: u64 = 0;
    loop {
        for (wait, text) in script {
            tokio::time::sleep(Duration::from_secs(wait)).await;
            tracing::info!(target: "atmate::demo", %from, %text, "demo: the network delivers an SMS");
            if let Err(e) = sim
                .inject_sms(InjectSms {
                    from: from.clone(),
                    text: text.to_owned(),
                    ..InjectSms::default()
                })
                .await
            {
                tracing::warn!(error = %e, "demo: injecting an SMS failed");
            }
        }
        round += 1;
        // A network blip every other round, and a signal wobble.
        if !round.is_multiple_of(2) {
            tracing::info!(target: "atmate::demo", "demo: the network drops");
            sim.network_lost().await;
            tokio::time::sleep(Duration::from_secs(20)).await;
            sim.network_back().await;
        }
        sim.set_signal(if round.is_multiple_of(2) { 18 } else { 9 })
            .await;
    }
}
