//! The connection to the relay: the challenge, authentication, the connection task
//! (reconnecting with backoff and jitter), the read loop that batches deliveries into
//! store transactions, requests answered by id, and what ends a connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::Either;
use prost::Message as _;
use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot};

use super::rt;
use super::transport::{Socket, SocketStream};

use super::*;
use crate::error::StoreError;
use crate::store::IdentityKeyStore;
use crate::wire::relay::{self as proto, ClientFrame, ClientKind, RelayFrame, RelayKind};

pub(super) type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<proto::Response>>>>;

/// A live connection: frames go out through `tx`; answers come back by request id.
pub(super) struct Link {
    pub(super) tx: mpsc::UnboundedSender<ClientFrame>,
    pub(super) pending: Pending,
    pub(super) next_id: AtomicU64,
}

pub(super) fn relay_error(r: &proto::Response) -> ClientError {
    ClientError::Relay {
        code: r.error_code.clone(),
        message: r.error.clone(),
    }
}

pub(super) fn encode(f: &ClientFrame) -> Vec<u8> {
    f.encode_to_vec()
}

fn decode(bytes: &[u8]) -> Result<RelayFrame, ClientError> {
    RelayFrame::decode(bytes).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Read the next relay frame; `None` when the connection ends.
pub(super) async fn next_frame(ws: &mut Socket) -> Option<Result<RelayFrame, ClientError>> {
    Some(ws.recv().await?.and_then(|b| decode(&b)))
}

impl Client {
    /// Open a connection, read the challenge, send `kind` (built from the nonce), and
    /// return the relay's answer with the still-open socket.
    pub(super) async fn unauthenticated(
        &self,
        kind: impl FnOnce(&[u8]) -> Result<ClientKind, ClientError>,
    ) -> Result<proto::Response, ClientError> {
        let c = &self.inner.config;
        let (mut ws, nonce) = self.connect_for_challenge().await?;
        let f = ClientFrame {
            request_id: 1,
            kind: Some(kind(&nonce)?),
        };
        ws.send(encode(&f)).await?;
        let r = loop {
            match rt::timeout(c.request_timeout, next_frame(&mut ws)).await {
                Ok(Some(Ok(RelayFrame {
                    kind: Some(RelayKind::Response(r)),
                }))) if r.request_id == 1 => break r,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => return Err(ClientError::Transport("connection closed".into())),
                Err(_) => return Err(ClientError::Transport("timed out".into())),
            }
        };
        ws.close().await;
        if r.ok {
            Ok(r)
        } else {
            Err(relay_error(&r))
        }
    }

    /// Connect to the relay and read its challenge: the socket and the nonce.
    pub(super) async fn connect_for_challenge(&self) -> Result<(Socket, Vec<u8>), ClientError> {
        let c = &self.inner.config;
        let mut ws = Socket::connect(&c.relay_url, c.tls.as_ref()).await?;
        match next_frame(&mut ws).await {
            Some(Ok(RelayFrame {
                kind: Some(RelayKind::Challenge(ch)),
            })) => Ok((ws, ch.nonce)),
            Some(Err(e)) => Err(e),
            _ => Err(ClientError::Protocol("no challenge".into())),
        }
    }

    // ------------------------------------------------------------ connection

    /// Start the connection task (idempotent): connect, authenticate, top up
    /// prekeys, resend the outbox, receive. It reconnects with backoff until
    /// [`shutdown`](Self::shutdown).
    pub fn start(&self) {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        rt::spawn(async move { me.run().await });
    }

    /// Stop the connection task and close the connection. Everything received is
    /// already committed; unsent messages stay in the outbox for the next start.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let link = self.take_link();
        drop(link);
        // Let the connection task see the signal.
        rt::yield_now().await;
        self.inner.started.store(false, Ordering::SeqCst);
    }

    /// Whether an authenticated connection is up.
    pub fn is_connected(&self) -> bool {
        self.current_link().is_some()
    }

    pub(super) fn current_link(&self) -> Option<Arc<Link>> {
        self.inner
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn take_link(&self) -> Option<Arc<Link>> {
        self.inner
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    pub(super) async fn run(&self) {
        self.inner.shutdown.send_replace(false);
        let mut shutdown = self.inner.shutdown.subscribe();
        let b = self.inner.config.backoff.clone();
        let mut delay = b.min;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let outcome = match rt::first(self.connection(), shutdown.wait_for(|s| *s)).await {
                Either::Left(r) => r,
                Either::Right(_) => break,
            };
            let authenticated = match outcome {
                Ok(()) => true,
                Err((authenticated, e)) => {
                    self.take_link();
                    self.emit(Event::Disconnected {
                        reason: e.to_string(),
                    });
                    authenticated
                }
            };
            if authenticated {
                delay = b.min;
            }
            // Full jitter: a relay restart does not get every client back at once.
            let jitter = rand_core::RngCore::next_u64(&mut OsRng) % (delay.as_millis() as u64 + 1);
            if let Either::Right(_) = rt::first(
                rt::sleep(Duration::from_millis(jitter)),
                shutdown.wait_for(|s| *s),
            )
            .await
            {
                break;
            }
            delay = (delay * 2).min(b.max);
        }
        self.take_link();
    }

    /// One connection, until it drops. The error says whether it had authenticated.
    pub(super) async fn connection(&self) -> Result<(), (bool, ClientError)> {
        let addr = self.address().map_err(|e| (false, e))?;
        let c = &self.inner.config;
        let (mut ws, nonce) = self.connect_for_challenge().await.map_err(|e| (false, e))?;
        let (identity, registration_id) = self
            .with_store(|s| {
                Ok::<_, StoreError>((s.identity_key_pair()?, s.local_registration_id()?))
            })
            .map_err(|e| (false, e.into()))?;
        let sig = identity.private_key().sign(
            &proto::auth_message(&nonce, &addr.name, addr.device_id),
            &mut OsRng,
        );
        let auth = ClientFrame {
            request_id: 0,
            kind: Some(ClientKind::Auth(proto::Auth {
                user: addr.name.clone(),
                device_id: addr.device_id,
                identity_key: identity.identity_key().serialize().to_vec(),
                registration_id,
                signature: sig.to_vec(),
            })),
        };
        ws.send(encode(&auth)).await.map_err(|e| (false, e))?;
        let prekeys_left = match rt::timeout(c.request_timeout, next_frame(&mut ws)).await {
            Ok(Some(Ok(RelayFrame {
                kind: Some(RelayKind::Response(r)),
            }))) if r.ok => r.prekeys_left,
            Ok(Some(Ok(RelayFrame {
                kind: Some(RelayKind::Response(r)),
            }))) => return Err((false, relay_error(&r))),
            Ok(Some(Err(e))) => return Err((false, e)),
            Ok(_) => return Err((false, ClientError::Protocol("no answer to Auth".into()))),
            Err(_) => return Err((false, ClientError::Transport("Auth timed out".into()))),
        };
        // Authenticated: a writer task owns the sink.
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<ClientFrame>();
        let link = Arc::new(Link {
            tx,
            pending: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(1),
        });
        *self.inner.link.lock().unwrap_or_else(|e| e.into_inner()) = Some(link.clone());
        let writer = rt::spawn(async move {
            while let Some(f) = rx.recv().await {
                if sink.send(encode(&f)).await.is_err() {
                    break;
                }
            }
            sink.close().await;
        });
        self.emit(Event::Connected);
        // Keys and outbox go through requests: run them beside the reader.
        let me = self.clone();
        let housekeeping = rt::spawn(async move {
            // A failed upload is retried on the next connection or low-keys signal.
            let _ = me.top_up_prekeys(prekeys_left).await;
            me.flush_outbox().await;
            // What other devices of the account wrote while this one was away.
            let _ = me.sync_app_state().await;
            me.resume_history().await;
            // The primary keeps its signed device list from expiring.
            let every = (me.inner.config.device_list_ttl / 4).max(Duration::from_millis(100));
            loop {
                let _ = me.renew_device_list().await;
                rt::sleep(every).await;
            }
        });
        // Whether the read loop ends or this future is dropped (shutdown), the tasks
        // of this connection stop, its socket closes and waiting requests fail at once.
        let _end = ConnectionEnd {
            tasks: vec![housekeeping, writer],
            link: link.clone(),
            client: self.clone(),
        };
        let result = self.read_loop(&mut stream, &link).await;
        result.map_err(|e| (true, e))
    }

    pub(super) async fn read_loop(
        &self,
        stream: &mut SocketStream,
        link: &Arc<Link>,
    ) -> Result<(), ClientError> {
        let mut batch: Vec<proto::Deliver> = Vec::new();
        let mut receipts: Vec<proto::Receipt> = Vec::new();
        loop {
            // Wait for one frame, then take whatever else is already there (a queue
            // drained after a reconnect arrives as a burst: one transaction per batch).
            let mut first = true;
            loop {
                let next = if first {
                    stream.recv().await
                } else {
                    match futures_util::FutureExt::now_or_never(stream.recv()) {
                        Some(n) => n,
                        None => break,
                    }
                };
                first = false;
                let f = match next {
                    None => return Err(ClientError::Transport("connection closed".into())),
                    Some(b) => decode(&b?)?,
                };
                match f.kind {
                    Some(RelayKind::Response(r)) => {
                        let waiter = link
                            .pending
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&r.request_id);
                        if let Some(w) = waiter {
                            let _ = w.send(r);
                        }
                    }
                    Some(RelayKind::Deliver(d)) => batch.push(d),
                    Some(RelayKind::Receipt(r)) => receipts.push(r),
                    Some(RelayKind::KeysLow(k)) => {
                        let me = self.clone();
                        rt::spawn(async move {
                            let _ = me.top_up_prekeys(k.prekeys_left).await;
                        });
                    }
                    Some(RelayKind::DevicesChanged(_)) => {
                        let me = self.clone();
                        rt::spawn(async move {
                            if let Ok(a) = me.address() {
                                let _ = me.verified_devices(&a.name, true).await;
                            }
                        });
                    }
                    Some(RelayKind::AppStateChanged(c)) => {
                        let me = self.clone();
                        rt::spawn(async move {
                            let _ = me.sync_collection(&c.collection).await;
                        });
                    }
                    Some(RelayKind::Challenge(_) | RelayKind::LinkCode(_))
                    | Some(RelayKind::LinkOffered(_))
                    | None => {}
                }
                if batch.len() >= BATCH {
                    break;
                }
            }
            if !batch.is_empty() {
                let acks = self.receive(std::mem::take(&mut batch))?;
                if !acks.is_empty() {
                    self.post(
                        link,
                        ClientKind::Ack(proto::Ack {
                            ids: acks,
                            receipt_ids: vec![],
                        }),
                    );
                }
            }
            if !receipts.is_empty() {
                let ids = self.delivery_receipts(std::mem::take(&mut receipts))?;
                self.post(
                    link,
                    ClientKind::Ack(proto::Ack {
                        ids: vec![],
                        receipt_ids: ids,
                    }),
                );
            }
        }
    }

    /// Send a frame without waiting for its answer.
    pub(super) fn post(&self, link: &Link, kind: ClientKind) {
        let id = link.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = link.tx.send(ClientFrame {
            request_id: id,
            kind: Some(kind),
        });
    }

    /// A request over the live connection, answered by the relay.
    pub(super) async fn request(&self, kind: ClientKind) -> Result<proto::Response, ClientError> {
        let link = self.current_link().ok_or(ClientError::NotConnected)?;
        let id = link.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        link.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        link.tx
            .send(ClientFrame {
                request_id: id,
                kind: Some(kind),
            })
            .map_err(|_| ClientError::NotConnected)?;
        match rt::timeout(self.inner.config.request_timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(ClientError::NotConnected),
            Err(_) => {
                link.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                Err(ClientError::Transport("request timed out".into()))
            }
        }
    }
}

/// The end of one connection (see `Client::connection`), on every path out of it.
pub(super) struct ConnectionEnd {
    tasks: Vec<rt::Task>,
    link: Arc<Link>,
    client: Client,
}

impl Drop for ConnectionEnd {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Fail the requests still waiting.
        self.link
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut l = self
            .client
            .inner
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if l.as_ref().is_some_and(|x| Arc::ptr_eq(x, &self.link)) {
            *l = None;
        }
    }
}
