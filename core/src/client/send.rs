//! Sending: sessions with every device of a contact, one stored plaintext with one
//! outbox entry per device, read receipts, typing and presence, discovery, and the
//! outbox flushed to the relay (corrected on `DeviceMismatch`).

use super::*;
use crate::address::ProtocolAddress;
use crate::error::{SessionError, StoreError};
use crate::sqlite::messages::PendingSend;
use crate::wire::content::Content;
use crate::wire::relay::{self as proto, ClientKind};

impl Client {
    /// The devices of `user` to encrypt for (checked against the primary's signed
    /// device list), with a session for each. A stale list costs nothing: the relay
    /// answers `DeviceMismatch` and the send is corrected.
    pub(super) async fn prepare_devices(&self, user: &str) -> Result<Vec<u32>, ClientError> {
        let devices = self.verified_devices(user, false).await?;
        if devices.is_empty() {
            return Err(ClientError::Relay {
                code: "NotFound".into(),
                message: format!("no devices known for {user}"),
            });
        }
        Ok(devices)
    }

    /// A session with every device in `devices` that has none (fetching bundles),
    /// each recorded in the user's device list.
    pub(super) async fn ensure_sessions(
        &self,
        user: &str,
        devices: &[u32],
    ) -> Result<(), ClientError> {
        for &d in devices {
            self.ensure_session_with(user, d, None).await?;
        }
        Ok(())
    }

    /// Encode `content` with this account's device-list version.
    pub(super) fn stamp(&self, mut content: Content) -> Vec<u8> {
        content.device_list_version = self.own_list_version();
        content.encode()
    }

    // ------------------------------------------------------------ sending

    /// Send a text message to every device of `peer`. It is committed to the store
    /// (and its outbox) before this returns; if the relay is unreachable it goes out
    /// after the next reconnect. Returns the message id in the store.
    pub async fn send_text(&self, peer: &str, text: &str) -> Result<i64, ClientError> {
        let devices = self.prepare_devices(peer).await?;
        let sent_at = self.timestamp();
        let plaintext = self.stamp(Content::text(text, sent_at));
        self.send_stored(peer, &devices, text.as_bytes(), None, &plaintext, sent_at)
            .await
    }

    /// Store a message (`body`; `media`: a media message's descriptor) with its
    /// encrypted copies for `devices` of `peer`, then push them; the message id. Not
    /// connected, the send stays in the outbox for the next connection.
    pub(super) async fn send_stored(
        &self,
        peer: &str,
        devices: &[u32],
        body: &[u8],
        media: Option<&[u8]>,
        plaintext: &[u8],
        sent_at: u64,
    ) -> Result<i64, ClientError> {
        let (stored, send) = self.with_store(|s| {
            s.send_to_devices(peer, devices, Some(body), media, plaintext, sent_at as i64)
        })?;
        let message_id = stored
            .map(|m| m.id)
            .ok_or_else(|| ClientError::Store(StoreError::Backend("no message stored".into())))?;
        match self.flush_send(send.id).await {
            Ok(()) | Err(ClientError::NotConnected) => {}
            Err(e) => return Err(e),
        }
        // The account's other devices get a copy naming the real destination.
        match self.copy_to_own_devices(peer, plaintext, sent_at).await {
            Ok(()) | Err(ClientError::NotConnected) => Ok(message_id),
            Err(e) => Err(e),
        }
    }

    /// Mark the chat with `peer` read and send read receipts (end-to-end encrypted)
    /// for the messages that were unread. Returns how many were marked. For a group's
    /// chat (`peer` = [`GroupInfo::chat_peer`]) the chat is marked read on this
    /// account's devices; group members get no read receipts.
    pub async fn mark_read(&self, peer: &str) -> Result<usize, ClientError> {
        let (marked, group) = self.with_store(|s| {
            let chat = s.chat_id(peer)?;
            Ok::<_, StoreError>((s.mark_chat_read(chat)?, s.group_of_chat(chat)?.is_some()))
        })?;
        if marked.is_empty() {
            return Ok(0);
        }
        if group {
            // A group chat (`GroupInfo::chat_peer`): read on this account's devices;
            // no read receipts to the group's members.
            return match self.sync_read_marker(peer).await {
                Ok(()) | Err(ClientError::NotConnected) => Ok(marked.len()),
                Err(e) => Err(e),
            };
        }
        let stamps: Vec<u64> = marked.iter().map(|(_, t)| *t as u64).collect();
        let devices = self.prepare_devices(peer).await?;
        let plaintext = self.stamp(Content::read(stamps));
        let sent_at = self.timestamp() as i64;
        let (_, send) = self
            .with_store(|s| s.send_to_devices(peer, &devices, None, None, &plaintext, sent_at))?;
        match self.flush_send(send.id).await {
            Ok(()) | Err(ClientError::NotConnected) => {}
            Err(e) => return Err(e),
        }
        // The account's other devices mark the chat read too (app-state sync).
        match self.sync_read_marker(peer).await {
            Ok(()) | Err(ClientError::NotConnected) => Ok(marked.len()),
            Err(e) => Err(e),
        }
    }

    /// Tell `peer`'s connected devices that this user started or stopped typing.
    /// Ephemeral: encrypted end to end, never stored, dropped if they are offline.
    pub async fn set_typing(&self, peer: &str, started: bool) -> Result<(), ClientError> {
        self.send_ephemeral(peer, &Content::typing(started)).await
    }

    /// Tell `peer`'s connected devices whether this user is online (an app calls it
    /// when it comes to the foreground or leaves it). Ephemeral like typing.
    pub async fn set_presence(&self, peer: &str, online: bool) -> Result<(), ClientError> {
        self.send_ephemeral(peer, &Content::presence(online)).await
    }

    pub(super) async fn send_ephemeral(
        &self,
        peer: &str,
        content: &Content,
    ) -> Result<(), ClientError> {
        let devices = self.prepare_devices(peer).await?;
        let plaintext = self.stamp(content.clone());
        let envelopes = self.with_store(|s| {
            s.transaction(|s| {
                devices
                    .iter()
                    .map(|&d| {
                        let m =
                            crate::message_encrypt(s, &ProtocolAddress::new(peer, d), &plaintext)?;
                        Ok(proto::OutEnvelope {
                            device_id: d,
                            message_type: u32::from(m.message_type()),
                            payload: m.serialized().to_vec(),
                        })
                    })
                    .collect::<Result<Vec<_>, SessionError>>()
            })
        })?;
        let r = self
            .request(ClientKind::Send(proto::Send {
                to_user: peer.to_string(),
                envelopes,
                ephemeral: true,
                unverified: vec![],
            }))
            .await?;
        if r.ok {
            Ok(())
        } else {
            Err(relay_error(&r))
        }
    }

    /// Which of these phone numbers are registered? Only hash prefixes leave the
    /// device (see PROTOCOL.md for what the relay can still learn); the answer is
    /// matched against the full hashes here.
    pub async fn discover(&self, phones: &[String]) -> Result<Vec<String>, ClientError> {
        let hashes: Vec<([u8; 32], &String)> = phones
            .iter()
            .map(|p| (proto::discovery_hash(p), p))
            .collect();
        let mut prefixes: Vec<Vec<u8>> = hashes
            .iter()
            .map(|(h, _)| h[..proto::DISCOVERY_PREFIX_LEN].to_vec())
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let mut found = Vec::new();
        for chunk in prefixes.chunks(1000) {
            let r = self
                .request(ClientKind::Discover(proto::Discover {
                    prefixes: chunk.to_vec(),
                }))
                .await?;
            if !r.ok {
                return Err(relay_error(&r));
            }
            for e in r.found {
                if let Some((_, p)) = hashes
                    .iter()
                    .find(|(h, p)| h.as_slice() == e.hash.as_slice() && **p == e.user)
                {
                    found.push((*p).clone());
                }
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// Push every pending send to the relay (after a reconnect).
    pub(super) async fn flush_outbox(&self) {
        let sends = match self.with_store(|s| s.pending_sends()) {
            Ok(s) => s,
            Err(_) => return,
        };
        for s in sends {
            match self.flush_send(s.id).await {
                Ok(()) => {}
                Err(ClientError::NotConnected) | Err(ClientError::Transport(_)) => return,
                Err(_) => {}
            }
        }
    }

    /// Hand one pending send to the relay, correcting its device set when the relay
    /// says it differs.
    pub(super) async fn flush_send(&self, send_id: i64) -> Result<(), ClientError> {
        let _one_at_a_time = self.inner.flush.lock().await;
        self.flush_send_locked(send_id, None).await
    }

    /// Hand several sends (to different users) to the relay at once: their requests
    /// are in flight together, so the relay commits them together (group commit), and
    /// the accepted ones are completed in one store transaction. Sends the relay
    /// refused go on one by one (corrected, failed or kept). One result per send, in
    /// no particular order.
    pub(super) async fn flush_sends(&self, send_ids: &[i64]) -> Vec<Result<(), ClientError>> {
        let _one_at_a_time = self.inner.flush.lock().await;
        let sends: Result<Vec<PendingSend>, StoreError> = self.with_store(|s| {
            send_ids
                .iter()
                .filter_map(|&id| s.pending_send(id).transpose())
                .collect()
        });
        let sends = match sends {
            Ok(s) => s,
            Err(e) => return vec![Err(e.into())],
        };
        let answers = futures_util::future::join_all(
            sends
                .iter()
                .map(|send| self.request(self.send_request(send))),
        )
        .await;
        let mut results = Vec::with_capacity(sends.len());
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for (send, answer) in sends.into_iter().zip(answers) {
            match answer {
                Ok(r) if r.ok => accepted.push((send.id, accepted_devices(&send, &r))),
                Ok(r) => refused.push((send, r)),
                Err(e) => results.push(Err(e)),
            }
        }
        match self.with_store(|s| s.complete_sends(&accepted)) {
            Ok(done) => {
                for (message_id, delivered) in done {
                    self.completed(message_id, delivered);
                    results.push(Ok(()));
                }
            }
            Err(e) => results.push(Err(e.into())),
        }
        for (send, r) in refused {
            let id = send.id;
            results.push(self.flush_send_locked(id, Some((send, r))).await);
        }
        results
    }

    /// The `Send` request for a pending send.
    pub(super) fn send_request(&self, send: &PendingSend) -> ClientKind {
        ClientKind::Send(proto::Send {
            to_user: send.recipient.clone(),
            envelopes: envelopes(send),
            ephemeral: false,
            unverified: self.unverified_devices(&send.recipient),
        })
    }

    /// Events for a completed send.
    pub(super) fn completed(&self, message_id: Option<i64>, delivered: Vec<ProtocolAddress>) {
        if let Some(message_id) = message_id {
            self.emit(Event::Sent { message_id });
            for device in delivered {
                self.emit(Event::Delivered { message_id, device });
            }
        }
    }

    /// Push one send (`first`: the send and the relay's answer to a request already
    /// made), correcting it on `DeviceMismatch`.
    pub(super) async fn flush_send_locked(
        &self,
        send_id: i64,
        mut first: Option<(PendingSend, proto::Response)>,
    ) -> Result<(), ClientError> {
        for _attempt in 0..4 {
            let (send, r) = match first.take() {
                Some(answered) => answered,
                None => {
                    let Some(send) = self.with_store(|s| s.pending_send(send_id))? else {
                        return Ok(()); // done meanwhile
                    };
                    let r = self.request(self.send_request(&send)).await?;
                    (send, r)
                }
            };
            if r.ok {
                let accepted = accepted_devices(&send, &r);
                let (message_id, delivered) =
                    self.with_store(|s| s.complete_send(send.id, &accepted))?;
                self.completed(message_id, delivered);
                return Ok(());
            }
            match r.error_code.as_str() {
                "DeviceMismatch" => {
                    // Read the list again and check it: a missing device the primary
                    // did not sign gets nothing (it goes in `unverified`).
                    let verified = self.verified_devices(&send.recipient, true).await?;
                    let missing: Vec<u32> = r
                        .missing_devices
                        .iter()
                        .copied()
                        .filter(|d| verified.contains(d))
                        .collect();
                    self.with_store(|s| s.correct_send(send.id, &missing, &r.extra_devices))?;
                }
                "NotFound" | "TooLarge" | "BadRequest" => {
                    self.with_store(|s| s.fail_send(send.id))?;
                    self.emit(Event::Failed {
                        message_id: send.message_id,
                        reason: format!("{}: {}", r.error_code, r.error),
                    });
                    return Err(relay_error(&r));
                }
                // QueueFull, Internal, RateLimited: kept; retried after a reconnect.
                _ => return Err(relay_error(&r)),
            }
        }
        Err(ClientError::Relay {
            code: "DeviceMismatch".into(),
            message: "the device list kept changing".into(),
        })
    }
}

/// Each device of a send paired with the relay's message id for it.
pub(super) fn accepted_devices(send: &PendingSend, r: &proto::Response) -> Vec<(u32, u64)> {
    send.entries
        .iter()
        .map(|e| e.recipient.device_id)
        .zip(r.message_ids.iter().copied())
        .collect()
}

pub(super) fn envelopes(send: &PendingSend) -> Vec<proto::OutEnvelope> {
    send.entries
        .iter()
        .map(|e| proto::OutEnvelope {
            device_id: e.recipient.device_id,
            message_type: u32::from(e.message_type),
            payload: e.payload.clone(),
        })
        .collect()
}
