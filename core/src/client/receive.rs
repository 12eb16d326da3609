//! Receiving: a burst of deliveries decrypted and stored in one transaction per
//! sender device (then acknowledged), what each plaintext means, delivery receipts.

use rand_core::OsRng;

use super::rt;
use super::*;
use crate::address::ProtocolAddress;
use crate::error::SessionError;
use crate::sqlite::messages::{Envelope, Incoming, Received};
use crate::wire::content::{Body, Content, RECEIPT_READ};
use crate::wire::relay::{self as proto};

impl Client {
    /// Decrypt and store a burst of deliveries; returns the relay ids to acknowledge.
    /// A store failure returns an error (nothing acknowledged: redelivered later).
    pub(super) fn receive(&self, delivers: Vec<proto::Deliver>) -> Result<Vec<u64>, ClientError> {
        let mut acks = Vec::with_capacity(delivers.len());
        let mut events = Vec::new();
        let now = now_ms() as i64;
        let me = self.address()?;
        let mut list_versions: Vec<(String, u64)> = Vec::new();
        let mut controls: Vec<Vec<u8>> = Vec::new();
        let mut i = 0;
        while i < delivers.len() {
            // Consecutive deliveries from one device go in one transaction.
            let from = ProtocolAddress::new(delivers[i].from_user.clone(), delivers[i].from_device);
            let mut j = i;
            while j < delivers.len()
                && delivers[j].from_user == from.name
                && delivers[j].from_device == from.device_id
            {
                j += 1;
            }
            let group = &delivers[i..j];
            let ids: Vec<[u8; 8]> = group.iter().map(|d| d.id.to_be_bytes()).collect();
            let envs: Vec<Envelope<'_>> = group
                .iter()
                .zip(&ids)
                .filter(|(d, _)| d.message_type <= u8::MAX as u32)
                .map(|(d, id)| Envelope {
                    id: id.as_slice(),
                    message_type: d.message_type as u8,
                    ciphertext: &d.payload,
                    sent_at: d.server_time_ms as i64,
                })
                .collect();
            let outcomes = self.with_store(|s| {
                s.receive_batch_with(&from, &envs, now, &mut OsRng, |env, pt| {
                    let ephemeral = group
                        .iter()
                        .zip(&ids)
                        .any(|(d, id)| d.ephemeral && id.as_slice() == env.id);
                    let (incoming, version) = decode_content(pt, ephemeral, &from, &me)?;
                    if version > 0 {
                        list_versions.push((from.name.clone(), version));
                    }
                    Ok(incoming)
                })
            })?;
            let mut k = 0;
            for (d, _) in group.iter().zip(&ids) {
                if d.message_type > u8::MAX as u32 {
                    events.push(Event::DecryptFailed {
                        from: from.clone(),
                        error: format!("unknown message type {}", d.message_type),
                    });
                } else {
                    let outcome = outcomes.get(k).cloned();
                    k += 1;
                    match outcome {
                        Some(Ok(Received::New(m))) => events.push(Event::Message(m)),
                        Some(Ok(Received::Group(g))) => events.push(Event::GroupUpdated {
                            group_id: g.id,
                            chat_id: g.chat_id,
                        }),
                        Some(Ok(Received::Read { message_ids })) => {
                            events.extend(message_ids.into_iter().map(|message_id| Event::Read {
                                message_id,
                                by: from.clone(),
                            }))
                        }
                        Some(Ok(Received::Ephemeral(pt))) => {
                            match Content::decode(&pt).map(|c| c.body) {
                                Ok(Some(Body::KeyShare(_) | Body::History(_))) => controls.push(pt),
                                Ok(Some(Body::Typing(t))) => events.push(Event::Typing {
                                    from: from.clone(),
                                    started: t.started,
                                }),
                                Ok(Some(Body::Presence(p))) => events.push(Event::Presence {
                                    from: from.clone(),
                                    online: p.online,
                                }),
                                _ => {}
                            }
                        }
                        // A redelivery (same relay id) or a resent ciphertext (its
                        // message key is used up): already in the store.
                        Some(Ok(Received::Duplicate { .. }))
                        | Some(Err(SessionError::DuplicateMessage { .. })) => {}
                        Some(Err(e)) => events.push(Event::DecryptFailed {
                            from: from.clone(),
                            error: e.to_string(),
                        }),
                        None => {}
                    }
                }
                if !d.ephemeral {
                    acks.push(d.id);
                }
            }
            i = j;
        }
        for e in events {
            self.emit(e);
        }
        for (user, version) in list_versions {
            self.saw_list_version(&user, version);
        }
        if !controls.is_empty() {
            // Keys are stored already (in the receiving transaction); act on them.
            let me = self.clone();
            rt::spawn(async move { me.on_control(controls).await });
        }
        Ok(acks)
    }

    pub(super) fn delivery_receipts(
        &self,
        receipts: Vec<proto::Receipt>,
    ) -> Result<Vec<u64>, ClientError> {
        let now = now_ms() as i64;
        let mut ids = Vec::with_capacity(receipts.len());
        for r in receipts {
            if r.expired {
                if let Some(message_id) = self.with_store(|s| s.expired(r.id))? {
                    self.emit(Event::Failed {
                        message_id: Some(message_id),
                        reason: format!(
                            "expired at the relay before {}.{} connected",
                            r.to_user, r.to_device
                        ),
                    });
                }
                ids.push(r.receipt_id);
                continue;
            }
            if let Some(message_id) = self.with_store(|s| s.delivered(r.id, now))? {
                self.emit(Event::Delivered {
                    message_id,
                    device: ProtocolAddress::new(r.to_user, r.to_device),
                });
            }
            ids.push(r.receipt_id);
        }
        Ok(ids)
    }
}

/// What a decrypted plaintext means (runs inside the receiving transaction), and the
/// sender's device-list version it names. Copies of sent messages, keys and history
/// are taken from this account's own devices only (keys and history from its primary).
pub(super) fn decode_content(
    pt: Vec<u8>,
    ephemeral: bool,
    from: &ProtocolAddress,
    me: &ProtocolAddress,
) -> Result<(Incoming, u64), SessionError> {
    let bad = |m: &str| SessionError::InvalidMessage(m.to_string());
    let c = Content::decode(&pt).map_err(|e| SessionError::InvalidMessage(e.to_string()))?;
    let version = c.device_list_version;
    let own = from.name == me.name;
    let incoming = match (c.body, ephemeral) {
        (Some(Body::Typing(_) | Body::Presence(_)), _) => Incoming::Ephemeral(pt),
        (_, true) => return Err(bad("only typing and presence travel as ephemeral messages")),
        (Some(Body::Sent(t)), false) if own => {
            let inner = Content::decode(&t.content)
                .map_err(|e| SessionError::InvalidMessage(e.to_string()))?;
            match message_of(inner.body)? {
                Incoming::Message {
                    body,
                    sent_at,
                    media,
                } if !t.destination.is_empty() => Incoming::Sent {
                    peer: t.destination,
                    body,
                    sent_at,
                    media,
                },
                _ => return Err(bad("a sent transcript holds a message")),
            }
        }
        (Some(Body::KeyShare(k)), false) if own && from.device_id == 1 => Incoming::Control {
            settings: sync::key_share_settings(&k)?,
            plaintext: pt,
        },
        (Some(Body::History(h)), false) if own && from.device_id == 1 => Incoming::Control {
            settings: vec![(sync::history_setting(h.chunk_order), pt.clone())],
            plaintext: pt,
        },
        (Some(Body::Sent(_) | Body::KeyShare(_) | Body::History(_)), false) => {
            return Err(bad("only this account's devices send that"))
        }
        (Some(Body::GroupUpdate(u)), false) => Incoming::Group(u),
        (Some(Body::SenderKey(_)), false) => {
            return Err(bad("a sender key travels inside a group envelope"))
        }
        (Some(Body::Receipt(r)), false) if r.kind == RECEIPT_READ => Incoming::Read {
            sent_at: r.sent_at.into_iter().map(|t| t as i64).collect(),
        },
        (body, false) => message_of(body)?,
    };
    Ok((incoming, version))
}

/// A text or media message to store.
pub(super) fn message_of(body: Option<Body>) -> Result<Incoming, SessionError> {
    match body {
        Some(Body::Text(t)) => Ok(Incoming::Message {
            body: t.body.into_bytes(),
            sent_at: t.sent_at as i64,
            media: None,
        }),
        Some(Body::Media(mut m)) => {
            let sent_at = m.sent_at as i64;
            m.sent_at = 0;
            let checked = MediaMessage::from_content(m.clone())
                .map_err(|e| SessionError::InvalidMessage(format!("media message: {e}")))?;
            Ok(Incoming::Message {
                body: checked.caption.into_bytes(),
                sent_at,
                media: Some(Content::media(m).encode()),
            })
        }
        _ => Err(SessionError::InvalidMessage("unknown content".into())),
    }
}
