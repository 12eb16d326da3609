//! The WebSocket to the relay natively: `ws://` (development) or `wss://` over rustls
//! (tokio-rustls, tokio-tungstenite), with the relay's certificate pinned by its
//! SHA-256 fingerprint.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{cert_fingerprint, host_port, TlsTrust};
use crate::client::ClientError;

/// A byte stream to the relay (TCP, or TLS over TCP).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

type Ws = WebSocketStream<Box<dyn Io>>;

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

/// Open the WebSocket. `wss://` requires `trust`; `ws://` refuses it (a pin on a
/// plain connection would be a configuration mistake).
async fn open(url: &str, trust: Option<&TlsTrust>) -> Result<Ws, ClientError> {
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

fn transport_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

/// The next binary message; `None` once the connection ends (pings are skipped).
async fn next_binary(
    stream: &mut (impl futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
              + Unpin),
) -> Option<Result<Vec<u8>, ClientError>> {
    loop {
        match stream.next().await? {
            Ok(Message::Binary(b)) => return Some(Ok(b.to_vec())),
            Ok(Message::Close(_)) => return None,
            Ok(_) => continue,
            Err(e) => return Some(Err(transport_err(e))),
        }
    }
}

/// Connect (TCP, TLS with the pin for `wss://`, the WebSocket handshake): the
/// writing and the reading half.
pub(super) async fn connect(
    url: &str,
    trust: Option<&TlsTrust>,
) -> Result<(SocketSink, SocketStream), ClientError> {
    let (sink, stream) = open(url, trust).await?.split();
    Ok((SocketSink(sink), SocketStream(stream)))
}

/// The writing half of a connection.
pub(crate) struct SocketSink(futures_util::stream::SplitSink<Ws, Message>);

impl SocketSink {
    /// Send one binary message.
    pub(crate) async fn send(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.0
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(transport_err)
    }

    /// Close the connection.
    pub(crate) async fn close(mut self) {
        let _ = self.0.close().await;
    }
}

/// The reading half of a connection.
pub(crate) struct SocketStream(futures_util::stream::SplitStream<Ws>);

impl SocketStream {
    /// The next binary message; `None` once the connection ends.
    pub(crate) async fn recv(&mut self) -> Option<Result<Vec<u8>, ClientError>> {
        next_binary(&mut self.0).await
    }
}
