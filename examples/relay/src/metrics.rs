//! Counters for operators, in the Prometheus text format (`GET /metrics` on the
//! metrics listener). No label carries a user, a number or any content.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The relay's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Authenticated connections open now.
    pub connections: AtomicI64,
    /// Connections accepted (before authentication).
    pub connections_total: AtomicU64,
    /// Connections refused by the per-address rate limit.
    pub connections_rate_limited: AtomicU64,
    /// Successful authentications.
    pub auth_ok: AtomicU64,
    /// Failed authentications.
    pub auth_failed: AtomicU64,
    /// Devices registered by phone number.
    pub registrations: AtomicU64,
    /// Verification codes sent.
    pub codes_sent: AtomicU64,
    /// Messages queued.
    pub messages_queued: AtomicU64,
    /// Group commits (one transaction each); queued / batches = mean batch size.
    pub write_batches: AtomicU64,
    /// Messages acknowledged by their recipient (deleted).
    pub messages_acked: AtomicU64,
    /// Sends refused as too many unsolicited first contacts.
    pub unsolicited_limited: AtomicU64,
    /// Blobs stored (sealed).
    pub blobs: AtomicU64,
    /// Messages expired unread.
    pub messages_expired: AtomicU64,
    /// Ephemeral messages pushed.
    pub ephemeral: AtomicU64,
    /// Payload bytes queued.
    pub payload_bytes: AtomicU64,
    /// Requests refused, by error code.
    pub refused: Mutex<HashMap<&'static str, u64>>,
}

impl Metrics {
    /// Count a refusal with `code`.
    pub fn refuse(&self, code: &'static str) {
        *self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, v: i64| {
            let _ = writeln!(s, "# HELP pawl_relay_{name} {help}");
            let _ = writeln!(s, "# TYPE pawl_relay_{name} {kind}");
            let _ = writeln!(s, "pawl_relay_{name} {v}");
        };
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed) as i64;
        counter(
            "connections",
            "Authenticated connections open.",
            "gauge",
            self.connections.load(Ordering::Relaxed),
        );
        counter(
            "connections_total",
            "Connections accepted.",
            "counter",
            g(&self.connections_total),
        );
        counter(
            "connections_rate_limited_total",
            "Connections refused by the per-address rate limit.",
            "counter",
            g(&self.connections_rate_limited),
        );
        counter(
            "auth_ok_total",
            "Successful authentications.",
            "counter",
            g(&self.auth_ok),
        );
        counter(
            "auth_failed_total",
            "Failed authentications.",
            "counter",
            g(&self.auth_failed),
        );
        counter(
            "registrations_total",
            "Devices registered by phone number.",
            "counter",
            g(&self.registrations),
        );
        counter(
            "codes_sent_total",
            "Verification codes sent.",
            "counter",
            g(&self.codes_sent),
        );
        counter(
            "messages_queued_total",
            "Messages queued.",
            "counter",
            g(&self.messages_queued),
        );
        counter(
            "messages_acked_total",
            "Messages acknowledged and deleted.",
            "counter",
            g(&self.messages_acked),
        );
        counter(
            "messages_expired_total",
            "Messages expired unread.",
            "counter",
            g(&self.messages_expired),
        );
        counter(
            "ephemeral_total",
            "Ephemeral messages pushed.",
            "counter",
            g(&self.ephemeral),
        );
        counter(
            "payload_bytes_total",
            "Payload bytes queued.",
            "counter",
            g(&self.payload_bytes),
        );
        let _ = writeln!(
            s,
            "# HELP pawl_relay_refused_total Requests refused, by error code."
        );
        let _ = writeln!(s, "# TYPE pawl_relay_refused_total counter");
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let mut codes: Vec<_> = refused.iter().collect();
        codes.sort();
        for (code, n) in codes {
            let _ = writeln!(s, "pawl_relay_refused_total{{code=\"{code}\"}} {n}");
        }
        s
    }
}

/// Token buckets per key (a client address, a device, a sender): `rate` tokens per
/// second, bursts of `burst`.
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    /// A limiter.
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take a token for `key`; false if none is left.
    pub fn allow(&self, key: K) -> bool {
        self.allow_n(key, 1.0)
    }

    /// Take `n` tokens for `key`, or none (false) if fewer are left.
    pub fn allow_n(&self, key: K, n: f64) -> bool {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() > 100_000 {
            // Forget full buckets (their owners are idle) to bound memory.
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(key).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= n {
            *tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill() {
        let l = RateLimiter::new(1000.0, 3.0);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(l.allow(ip) && l.allow(ip) && l.allow(ip));
        assert!(!l.allow(ip));
        assert!(l.allow([127, 0, 0, 2].into()), "per address");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(l.allow(ip), "refilled");
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.messages_queued.fetch_add(3, Ordering::Relaxed);
        m.refuse("TooLarge");
        let t = m.render();
        assert!(t.contains(
            "# TYPE pawl_relay_messages_queued_total counter\npawl_relay_messages_queued_total 3\n"
        ));
        assert!(t.contains("pawl_relay_refused_total{code=\"TooLarge\"} 1"));
    }
}
