//! The WebSocket to the relay. What the client needs of it is small: connect, send a
//! binary message, receive the next one, split into a writing and a reading half,
//! close. Each platform provides exactly that as [`Socket`], [`SocketSink`] and
//! [`SocketStream`], in one file:
//!
//! * [`native`]: TCP + rustls (certificate pinned by SHA-256) + tokio-tungstenite.
//! * [`web`]: the browser's `WebSocket` (`web_sys`); the browser does TLS and checks
//!   the certificate itself, so a pin cannot be set there.

use sha2::{Digest, Sha256};

use crate::client::ClientError;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::{Socket, SocketStream};
#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
pub(crate) use web::{Socket, SocketStream};

/// How the client trusts the relay's TLS certificate.
#[derive(Clone, PartialEq, Eq)]
pub enum TlsTrust {
    /// Accept exactly the certificate whose DER encoding has this SHA-256 digest
    /// (pinning; works with self-signed certificates). Any other certificate is
    /// refused, whoever signed it.
    PinnedCertSha256([u8; 32]),
}

impl std::fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsTrust::PinnedCertSha256(d) => {
                write!(f, "PinnedCertSha256(")?;
                for b in d {
                    write!(f, "{b:02x}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// SHA-256 of a DER certificate: the pin for [`TlsTrust::PinnedCertSha256`].
pub fn cert_fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// Whether `url` is `wss://`, its host and its port.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn host_port(url: &str) -> Result<(bool, String, u16), ClientError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else {
        return Err(ClientError::Config(format!(
            "relay URL must start with wss:// or ws://: {url}"
        )));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse::<u16>()
                .map_err(|_| ClientError::Config(format!("bad port in {url}")))?,
        ),
        _ => (authority.to_string(), if tls { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(ClientError::Config(format!("no host in {url}")));
    }
    Ok((tls, host, port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            host_port("wss://relay.example:8443/v1/ws").unwrap(),
            (true, "relay.example".into(), 8443)
        );
        assert_eq!(
            host_port("ws://127.0.0.1:9/v1/ws").unwrap(),
            (false, "127.0.0.1".into(), 9)
        );
        assert_eq!(
            host_port("wss://relay.example/v1/ws").unwrap(),
            (true, "relay.example".into(), 443)
        );
        assert!(host_port("http://x/").is_err());
        assert!(host_port("ws:///v1").is_err());
    }
}
