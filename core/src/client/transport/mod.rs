//! The WebSocket to the relay. What the client needs of it is small: connect, send a
//! binary message, receive the next one, close, and the writing and reading halves
//! apart (a writer task beside the read loop). Each platform provides, in one file,
//! `connect` giving a [`SocketSink`] and a [`SocketStream`]; [`Socket`] is the two
//! together, the same on every platform:
//!
//! * [`native`]: TCP + rustls (certificate pinned by SHA-256) + tokio-tungstenite.
//! * [`web`]: the browser's `WebSocket` (`web_sys`); the browser does TLS and checks
//!   the certificate itself, so a pin cannot be set there.

use sha2::{Digest, Sha256};

use crate::client::ClientError;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
use native as platform;
#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
use web as platform;

pub(crate) use platform::{SocketSink, SocketStream};

/// An open WebSocket to the relay: both halves.
pub(crate) struct Socket {
    sink: SocketSink,
    stream: SocketStream,
}

impl Socket {
    /// Connect: natively TCP, TLS with the pin for `wss://` and the WebSocket
    /// handshake; in the browser a `WebSocket`, once open.
    pub(crate) async fn connect(url: &str, trust: Option<&TlsTrust>) -> Result<Self, ClientError> {
        let (sink, stream) = platform::connect(url, trust).await?;
        Ok(Socket { sink, stream })
    }

    /// Send one binary message.
    pub(crate) async fn send(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.sink.send(bytes).await
    }

    /// The next binary message; `None` once the connection ends.
    pub(crate) async fn recv(&mut self) -> Option<Result<Vec<u8>, ClientError>> {
        self.stream.recv().await
    }

    /// Close the connection.
    pub(crate) async fn close(self) {
        self.sink.close().await
    }

    /// The writing half and the reading half.
    pub(crate) fn split(self) -> (SocketSink, SocketStream) {
        (self.sink, self.stream)
    }
}

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
