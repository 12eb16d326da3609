//! Helpers shared by the relay benches.
#![allow(dead_code)] // each bench uses some of them

use std::path::Path;
use std::time::{Duration, Instant};

use pawl_core::client::{Client, ClientConfig, Event, TlsTrust};
use pawl_relay::EmbeddedRelay;
use tokio::sync::mpsc::UnboundedReceiver;

pub(crate) type Events = UnboundedReceiver<Event>;

/// The value of `--name N` on the command line; without it, `bench` under
/// `cargo bench` (which passes `--bench`) and `test` under `cargo test`.
pub(crate) fn arg<T: std::str::FromStr>(name: &str, bench: T, test: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(if benching { bench } else { test })
}

/// Run `f` on a 2-worker runtime (the machine's cores).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A client of `relay` with its store in `dir` (generous request timeout: a bench
/// may keep the relay busy).
pub(crate) fn config(relay: &EmbeddedRelay, dir: &Path, name: &str) -> ClientConfig {
    let mut c = ClientConfig::new(dir.join(format!("{name}.db")), [9; 32], &relay.url);
    c.tls = Some(TlsTrust::PinnedCertSha256(relay.cert_sha256));
    c.request_timeout = Duration::from_secs(120);
    c
}

/// Wait (at most 300 s) for the first event `f` accepts.
pub(crate) async fn wait<T>(
    ev: &mut Events,
    what: &str,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        match tokio::time::timeout_at(deadline, ev.recv()).await {
            Ok(Some(e)) => {
                if let Some(t) = f(&e) {
                    return t;
                }
            }
            _ => panic!("timed out waiting for {what}"),
        }
    }
}

/// Register `phone` (the development code sender's code), start, wait for prekeys.
pub(crate) async fn registered(
    relay: &EmbeddedRelay,
    cfg: ClientConfig,
    phone: &str,
) -> (Client, Events) {
    let (c, mut ev) = Client::open(cfg).unwrap();
    c.request_code(phone).await.unwrap();
    c.verify_code(phone, &relay.code_for(phone).unwrap())
        .await
        .unwrap();
    c.start();
    wait(&mut ev, "prekeys", |e| {
        matches!(e, Event::PreKeysUploaded { .. }).then_some(())
    })
    .await;
    (c, ev)
}

/// Link a companion; returns it once connected, with the time the link took.
pub(crate) async fn link(primary: &Client, cfg: ClientConfig) -> (Client, Events, Duration) {
    let t = Instant::now();
    let (c, mut ev) = Client::open(cfg).unwrap();
    let mut linking = c.start_linking().await.unwrap();
    let code = linking.next_code().await.unwrap();
    primary.link_device(&code.code, |_| true).await.unwrap();
    linking.finished().await.unwrap();
    let took = t.elapsed();
    c.start();
    wait(&mut ev, "connected", |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    (c, ev, took)
}

/// (current, peak) resident memory of this process in KiB, from /proc/self/status.
pub(crate) fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Reset the peak (VmHWM) to the current RSS (Linux >= 4.0).
pub(crate) fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
