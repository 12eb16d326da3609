//! Multi-device on the relay: companions waiting to be linked, the primary's link
//! offers and removals, the signed device list and signed identities it keeps (it
//! checks them too, but clients never rely on that), and the app-state patch log.
//!
//! Linking: a new companion opens a connection and sends `LinkStart` instead of
//! `Auth`; it gets a link reference for its QR code (a new one pushed as `LinkCode`
//! when one expires: by default 60 s, then 20 s each, six in all; see `Limits`). The primary (device 1) scans
//! it and sends `LinkOffer` naming the reference; the relay hands the offer to the
//! waiting connection (`LinkOffered`), which answers `LinkFinish` with its
//! counter-signed identity and the new device list. The relay checks both against
//! the primary's registered identity, registers the device, tells the account's
//! connected devices (`DevicesChanged`) and serves the companion's connection as that
//! device from then on.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rand::RngCore;
use tokio::sync::mpsc;

use pawl_core::devices::adv::{
    DeviceListData, SignedDeviceIdentity, SignedDeviceList, PRIMARY_DEVICE,
};
use pawl_core::keys::{IdentityKey, PublicKey};

use super::{binary, fail, frame, now_ms, ok, Relay};
use crate::proto::*;
use crate::store::{identity_record, DeviceRecord, PutRule, DEVICE_LIST_RECORD};

/// How long a companion has to answer the primary's offer.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// A companion waiting under a link reference.
pub(super) struct PendingLink {
    offers: mpsc::UnboundedSender<(String, u32, Vec<u8>)>,
}

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;
type Refused = Box<Response>;

fn patch_record(collection: &str) -> String {
    format!("patch/{collection}")
}

fn snapshot_record(collection: &str) -> String {
    format!("snapshot/{collection}")
}

/// A device list of `user`'s that `primary` signed (`BadRequest` otherwise).
fn signed_list(primary: &IdentityKey, user: &str, bytes: &[u8]) -> Result<DeviceListData, Refused> {
    SignedDeviceList::decode_from(bytes)
        .and_then(|l| l.verify(primary.public_key(), user))
        .map_err(|e| Box::new(fail(0, "BadRequest", e.to_string())))
}

fn valid_collection(c: &str) -> bool {
    !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

impl Relay {
    fn primary_identity(&self, user: &str) -> Result<IdentityKey, Refused> {
        let dev = self
            .with_store(|s| s.device(user, PRIMARY_DEVICE))?
            .ok_or_else(|| Box::new(fail(0, "NotFound", "no primary device")))?;
        IdentityKey::from_bytes(&dev.identity_key)
            .map_err(|_| Box::new(fail(0, "Internal", "stored identity is bad")))
    }

    fn new_link_ref(&self, tx: &mpsc::UnboundedSender<(String, u32, Vec<u8>)>) -> Vec<u8> {
        let mut r = vec![0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut r);
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.clone(), PendingLink { offers: tx.clone() });
        r
    }

    fn drop_link_ref(&self, r: &[u8]) {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(r);
    }

    /// A companion's link, before authentication: codes, the offer, its answer.
    /// Returns the device it became and the request id to answer, or `None` when the
    /// connection should close (everything needed was already sent).
    pub(super) async fn link_companion(
        &self,
        nonce: &[u8],
        start: &LinkStart,
        rid: u64,
        sink: &mut Sink,
        stream: &mut Stream,
    ) -> Option<((String, u32), u64)> {
        let reply = |r: Response| binary(&frame(RelayKind::Response(r)));
        let identity = match PublicKey::from_bytes(&start.identity_key) {
            Ok(k) => k,
            Err(_) => {
                let _ = sink
                    .send(reply(fail(rid, "BadRequest", "malformed identity key")))
                    .await;
                return None;
            }
        };
        if identity
            .verify_signature(&auth_message(nonce, LINK_USER, 0), &start.signature)
            .is_err()
        {
            let _ = sink
                .send(reply(fail(rid, "AuthFailed", "signature does not verify")))
                .await;
            return None;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut link_ref = self.new_link_ref(&tx);
        let first_code = self.limits.link_code_first;
        let next_code = self.limits.link_code_next;
        let mut expires = tokio::time::Instant::now() + first_code;
        let first = Response {
            request_id: rid,
            ok: true,
            link_ref: link_ref.clone(),
            link_expires_ms: now_ms() + first_code.as_millis() as u64,
            ..Default::default()
        };
        if sink.send(reply(first)).await.is_err() {
            self.drop_link_ref(&link_ref);
            return None;
        }
        let mut codes = 1;
        let mut stop = self.shutdown.subscribe();
        let (user, device_id, offer) = loop {
            tokio::select! {
                _ = tokio::time::sleep_until(expires) => {
                    self.drop_link_ref(&link_ref);
                    if codes >= self.limits.link_codes {
                        let _ = sink.send(reply(fail(0, "LinkExpired", "no code was scanned"))).await;
                        return None;
                    }
                    codes += 1;
                    link_ref = self.new_link_ref(&tx);
                    expires = tokio::time::Instant::now() + next_code;
                    let code = LinkCode {
                        link_ref: link_ref.clone(),
                        expires_ms: now_ms() + next_code.as_millis() as u64,
                    };
                    if sink.send(binary(&frame(RelayKind::LinkCode(code)))).await.is_err() {
                        self.drop_link_ref(&link_ref);
                        return None;
                    }
                }
                o = rx.recv() => {
                    self.drop_link_ref(&link_ref);
                    match o {
                        Some(o) => break o,
                        None => return None,
                    }
                }
                m = stream.next() => match m {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => {
                        self.drop_link_ref(&link_ref);
                        return None;
                    }
                },
                _ = async { drop(stop.wait_for(|s| *s).await) } => {
                    self.drop_link_ref(&link_ref);
                    return None;
                }
            }
        };
        drop(tx);
        let offered = LinkOffered {
            user: user.clone(),
            device_id,
            offer,
        };
        if sink
            .send(binary(&frame(RelayKind::LinkOffered(offered))))
            .await
            .is_err()
        {
            return None;
        }
        let deadline = tokio::time::Instant::now() + FINISH_TIMEOUT;
        let req = loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => match ClientFrame::decode(b.as_ref()) {
                    Ok(f) => break f,
                    Err(_) => return None,
                },
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                _ => return None,
            }
        };
        let Some(ClientKind::LinkFinish(finish)) = &req.kind else {
            let _ = sink
                .send(reply(fail(
                    req.request_id,
                    "BadRequest",
                    "expected LinkFinish",
                )))
                .await;
            return None;
        };
        let rec = DeviceRecord {
            identity_key: start.identity_key.clone(),
            registration_id: start.registration_id,
        };
        match self.finish_link(&user, device_id, &rec, finish) {
            Ok(()) => Some(((user, device_id), req.request_id)),
            Err(mut r) => {
                r.request_id = req.request_id;
                let _ = sink.send(reply(*r)).await;
                None
            }
        }
    }

    /// Check the companion's answer against the primary's identity, then register it.
    fn finish_link(
        &self,
        user: &str,
        device_id: u32,
        rec: &DeviceRecord,
        finish: &LinkFinish,
    ) -> Result<(), Refused> {
        let bad = |m: &str| Box::new(fail(0, "BadRequest", m));
        let primary = self.primary_identity(user)?;
        let companion = IdentityKey::from_bytes(&rec.identity_key).map_err(|_| bad("identity"))?;
        let signed = SignedDeviceIdentity::decode_from(&finish.signed_identity)
            .map_err(|e| bad(&e.to_string()))?;
        let details = signed
            .verify(&primary, user, device_id, &companion)
            .map_err(|e| bad(&e.to_string()))?;
        let list = signed_list(&primary, user, &finish.device_list)?;
        if !list.contains(details.key_index) {
            return Err(bad("the device list does not name the device"));
        }
        if self.with_store(|s| s.device(user, device_id))?.is_some() {
            return Err(Box::new(fail(0, "AlreadyRegistered", "device id in use")));
        }
        let keys = finish
            .keys
            .as_ref()
            .ok_or_else(|| bad("the new device's prekeys are missing"))?;
        if keys.prekeys.len() > self.limits.max_prekeys_per_upload
            || companion
                .public_key()
                .verify_signature(&keys.signed_prekey, &keys.signed_prekey_signature)
                .is_err()
            || keys
                .prekeys
                .iter()
                .any(|p| PublicKey::from_bytes(&p.public_key).is_err())
        {
            return Err(bad("the new device's prekeys do not verify"));
        }
        // Everything checked: store the list (only if newer), then the device.
        self.put_record(user, DEVICE_LIST_RECORD, list.version, &finish.device_list)?;
        self.with_store(|s| s.register_device(user, device_id, rec))?;
        self.with_store(|s| {
            s.upload_keys(
                user,
                device_id,
                keys.signed_prekey_id,
                &keys.signed_prekey,
                &keys.signed_prekey_signature,
                &keys.prekeys,
            )
        })?;
        self.put_record(
            user,
            &identity_record(device_id),
            1,
            &finish.signed_identity,
        )?;
        tracing::info!(device = device_id, "companion linked");
        self.tell_account(
            user,
            None,
            DevicesChanged {
                device_id,
                removed: false,
            },
        );
        Ok(())
    }

    fn put_record(&self, user: &str, name: &str, version: u64, data: &[u8]) -> Result<(), Refused> {
        match self.with_store(|s| s.record_put(user, name, version, data, PutRule::Replace))? {
            Ok(()) => Ok(()),
            Err(latest) => Err(Box::new(Response {
                latest_version: latest,
                ..fail(
                    0,
                    "Conflict",
                    format!("{name}: version {version} is not newer than {latest}"),
                )
            })),
        }
    }

    /// Push `change` to every connected device of `user` but `except`.
    fn tell_account(&self, user: &str, except: Option<u32>, change: DevicesChanged) {
        self.push_account(user, except, RelayKind::DevicesChanged(change));
    }

    fn push_account(&self, user: &str, except: Option<u32>, kind: RelayKind) {
        let targets: Vec<_> = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((u, d), _)| u == user && Some(*d) != except)
            .map(|(_, c)| c.clone())
            .collect();
        for c in targets {
            c.push(frame(kind.clone()));
        }
    }

    fn require_primary(me: &(String, u32)) -> Result<(), Refused> {
        if me.1 == PRIMARY_DEVICE {
            Ok(())
        } else {
            Err(Box::new(fail(
                0,
                "BadRequest",
                "only the primary device may do this",
            )))
        }
    }

    /// The primary answers a companion's code.
    pub(super) fn link_offer(
        &self,
        me: &(String, u32),
        o: LinkOfferRequest,
    ) -> Result<Response, Refused> {
        Self::require_primary(me)?;
        if o.device_id <= PRIMARY_DEVICE || o.offer.len() > 16 * 1024 {
            return Ok(fail(0, "BadRequest", "bad device id or offer"));
        }
        if self.with_store(|s| s.device(&me.0, o.device_id))?.is_some() {
            return Ok(fail(0, "AlreadyRegistered", "device id in use"));
        }
        let waiting = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&o.link_ref);
        match waiting {
            Some(p) if p.offers.send((me.0.clone(), o.device_id, o.offer)).is_ok() => Ok(ok(0)),
            _ => Ok(fail(0, "LinkExpired", "no companion waits under this code")),
        }
    }

    /// The primary unlinks a companion with a new list that leaves it out.
    pub(super) fn remove_device(
        &self,
        me: &(String, u32),
        r: RemoveDevice,
    ) -> Result<Response, Refused> {
        Self::require_primary(me)?;
        if r.device_id == PRIMARY_DEVICE {
            return Ok(fail(0, "BadRequest", "the primary cannot be removed"));
        }
        let primary = self.primary_identity(&me.0)?;
        let list = match signed_list(&primary, &me.0, &r.device_list) {
            Ok(l) => l,
            Err(refused) => return Ok(*refused),
        };
        let stored = self.with_store(|s| s.record_latest(&me.0, &identity_record(r.device_id)))?;
        if let Some((_, bytes)) = stored {
            let still_listed = SignedDeviceIdentity::decode_from(&bytes)
                .and_then(|s| s.details())
                .is_ok_and(|d| list.contains(d.key_index));
            if still_listed {
                return Ok(fail(0, "BadRequest", "the new list still names the device"));
            }
        }
        self.put_record(&me.0, DEVICE_LIST_RECORD, list.version, &r.device_list)?;
        let existed = self.with_store(|s| s.remove_device(&me.0, r.device_id))?;
        if let Some(c) = self.conn(&me.0, r.device_id) {
            c.kicked.notify_one();
        }
        tracing::info!(device = r.device_id, existed, "device removed");
        self.tell_account(
            &me.0,
            Some(me.1),
            DevicesChanged {
                device_id: r.device_id,
                removed: true,
            },
        );
        Ok(ok(0))
    }

    /// The primary renews its signed device list.
    pub(super) fn put_device_list(
        &self,
        me: &(String, u32),
        p: PutDeviceList,
    ) -> Result<Response, Refused> {
        Self::require_primary(me)?;
        let primary = self.primary_identity(&me.0)?;
        let list = match signed_list(&primary, &me.0, &p.device_list) {
            Ok(l) => l,
            Err(refused) => return Ok(*refused),
        };
        self.put_record(&me.0, DEVICE_LIST_RECORD, list.version, &p.device_list)?;
        Ok(ok(0))
    }

    /// A user's devices with the signed list and identities (checked by the asker).
    pub(super) fn get_devices(&self, g: GetDevices) -> Result<Response, Refused> {
        let devices = self.with_store(|s| s.devices(&g.user))?;
        let device_list = self
            .with_store(|s| s.record_latest(&g.user, DEVICE_LIST_RECORD))?
            .map(|(_, b)| b)
            .unwrap_or_default();
        let mut identities = Vec::new();
        for &d in devices.iter().filter(|d| **d != PRIMARY_DEVICE) {
            if let Some((_, b)) =
                self.with_store(|s| s.record_latest(&g.user, &identity_record(d)))?
            {
                identities.push(DeviceIdentityEntry {
                    device_id: d,
                    signed_identity: b,
                });
            }
        }
        Ok(Response {
            ok: true,
            devices,
            device_list,
            identities,
            ..Default::default()
        })
    }

    /// Append an app-state patch of the caller's account (opaque here).
    pub(super) fn app_state_put(
        &self,
        me: &(String, u32),
        p: AppStatePut,
    ) -> Result<Response, Refused> {
        if !valid_collection(&p.collection) || p.patch.is_empty() {
            return Ok(fail(0, "BadRequest", "bad collection or empty patch"));
        }
        if p.patch.len() > self.limits.max_payload
            || p.snapshot.len() > 16 * self.limits.max_payload
        {
            return Ok(fail(0, "TooLarge", "patch or snapshot too large"));
        }
        let name = patch_record(&p.collection);
        match self
            .with_store(|s| s.record_put(&me.0, &name, p.version, &p.patch, PutRule::Append))?
        {
            Ok(()) => {}
            Err(latest) => {
                return Ok(Response {
                    latest_version: latest,
                    ..fail(
                        0,
                        "Conflict",
                        format!("version {} is not {latest} + 1", p.version),
                    )
                })
            }
        }
        if !p.snapshot.is_empty() {
            let snap = snapshot_record(&p.collection);
            // A newer snapshot may already be there (a racing device): keep that one.
            let _ = self.with_store(|s| {
                s.record_put(&me.0, &snap, p.version, &p.snapshot, PutRule::Replace)
            })?;
        }
        self.push_account(
            &me.0,
            Some(me.1),
            RelayKind::AppStateChanged(AppStateChanged {
                collection: p.collection,
                version: p.version,
            }),
        );
        Ok(Response {
            ok: true,
            latest_version: p.version,
            ..Default::default()
        })
    }

    /// The caller's account's patches after a version (and the snapshot).
    pub(super) fn app_state_get(
        &self,
        me: &(String, u32),
        g: AppStateGet,
    ) -> Result<Response, Refused> {
        if !valid_collection(&g.collection) {
            return Ok(fail(0, "BadRequest", "bad collection"));
        }
        let name = patch_record(&g.collection);
        let patches = self.with_store(|s| s.record_get(&me.0, &name, g.after_version, 1000))?;
        let latest = self
            .with_store(|s| s.record_latest(&me.0, &name))?
            .map_or(0, |(v, _)| v);
        let snapshot = if g.want_snapshot {
            self.with_store(|s| s.record_latest(&me.0, &snapshot_record(&g.collection)))?
                .map(|(version, data)| VersionedBlob { version, data })
        } else {
            None
        };
        Ok(Response {
            ok: true,
            patches: patches
                .into_iter()
                .map(|(version, data)| VersionedBlob { version, data })
                .collect(),
            latest_version: latest,
            snapshot,
            ..Default::default()
        })
    }
}
