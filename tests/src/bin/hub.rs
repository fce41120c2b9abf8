//! `syncflow-hub [ADDR]`: the in-repo ScheduleHub-like REST target (tests/src/hub.rs) on its own, for a demo of a
//! REST-target pipeline (default 127.0.0.1:8710). It takes `Authorization: Bearer $HUB_TOKEN` (default
//! "demo-token"), keeps its records in memory, and prints every 10 s how many it holds per entity. Ctrl-C stops it.

use syncflow_tests::hub::HubServer;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8710".into());
    let token = std::env::var("HUB_TOKEN").unwrap_or_else(|_| "demo-token".into());
    let hub = HubServer::start_on(&addr, &token).await;
    println!(
        "hub listening: base_url = \"{}\" (bearer token from HUB_TOKEN)",
        hub.base_url
    );
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let held = hub.entities();
                if !held.is_empty() {
                    println!("holding {held:?}; {} write calls so far", hub.write_calls());
                }
            }
        }
    }
}
