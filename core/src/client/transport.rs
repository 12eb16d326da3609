//! The WebSocket to the relay: `ws://` (development) or `wss://` over rustls, with the
//! relay's certificate pinned by its SHA-256 fingerprint.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

use super::ClientError;

/// A byte stream to the relay (TCP, or TLS over TCP).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

pub(crate) type Ws = WebSocketStream<Box<dyn Io>>;

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

#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = cert_fingerprint(end_entity.as_ref());
        if bool::from(got.ct_eq(&self.pin)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the relay's certificate is not the pinned one".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

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

/// Open the WebSocket. `wss://` requires `trust`; `ws://` refuses it (a pin on a
/// plain connection would be a configuration mistake).
pub(crate) async fn connect(url: &str, trust: Option<&TlsTrust>) -> Result<Ws, ClientError> {
    let (tls, host, port) = host_port(url)?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| ClientError::Transport(format!("connect {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match (tls, trust) {
        (false, None) => Box::new(tcp),
        (false, Some(_)) => {
            return Err(ClientError::Config(
                "a TLS pin was given for a plain ws:// relay URL".into(),
            ))
        }
        (true, None) => {
            return Err(ClientError::Config(
                "wss:// needs a TLS trust setting (the relay's certificate pin)".into(),
            ))
        }
        (true, Some(TlsTrust::PinnedCertSha256(pin))) => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| ClientError::Config(e.to_string()))?
                .dangerous() // the pin replaces the WebPKI check; it is stricter
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    pin: *pin,
                    provider,
                }))
                .with_no_client_auth();
            let name = ServerName::try_from(host.clone())
                .map_err(|_| ClientError::Config(format!("bad host name {host}")))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| ClientError::Tls(e.to_string()))?;
            Box::new(stream)
        }
    };
    let (ws, _) = tokio_tungstenite::client_async(url, io)
        .await
        .map_err(|e| ClientError::Transport(format!("WebSocket handshake: {e}")))?;
    Ok(ws)
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
