//! App-state sync and history sync in the client.
//!
//! App state ([`crate::appstate`]): read markers, archive, mute, pin, contact names
//! and settings are mutations in versioned patches per collection on the relay, which
//! stores them opaque. The primary makes the sync key and shares it with each
//! companion over their pairwise session (`KeyShare`), and makes a new one when a
//! device is removed. A patch that does not verify, or does not follow the last one
//! (dropped, reordered, replayed by the relay), is refused; the client then rebuilds
//! the collection from the latest snapshot (which must not be older than what it
//! has) and the patches after it.
//!
//! History: after linking, the primary packs the recent messages of every chat
//! ([`HistoryConfig`]) in chunks ([`crate::history`]), uploads each as an encrypted
//! blob and sends its key to the new companion, which downloads, checks and imports
//! them ([`Event::HistorySynced`]).

use rand_core::{OsRng, RngCore};

use super::{now_ms, relay_error, rt, Client, ClientError, Event};
use crate::address::ProtocolAddress;
use crate::appstate::{self, CollectionState, Mutation, SyncActionValue, SyncKey};
use crate::devices::adv::PRIMARY_DEVICE;
use crate::error::SessionError;
use crate::history::{self, HistoryChunk, HistoryMessage};
use crate::media::{MediaExpected, MediaKey};
use crate::sqlite::messages::{ImportedMessage, MessageDirection, MessageStatus};
use crate::wire::content::{AppStateKey, AppStateKeyShare, Body, Content, HistoryNotice};
use crate::wire::relay::{self as proto, ClientKind};

const KEY_PREFIX: &str = "appstate.key.";
const CURRENT_KEY: &str = "appstate.current";
const STATE_PREFIX: &str = "appstate.state.";
const HISTORY_PREFIX: &str = "history.notice.";

/// How much history the primary gives a new companion.
#[derive(Clone, Debug)]
pub struct HistoryConfig {
    /// Messages younger than this many days.
    pub days: u32,
    /// At most this many of the latest messages per chat.
    pub max_messages_per_chat: u32,
    /// Messages per chunk (one blob each).
    pub chunk_messages: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            days: 90,
            max_messages_per_chat: 10_000,
            chunk_messages: 5_000,
        }
    }
}

/// A chat's synced state (the same on every device of the account).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatState {
    /// Archived.
    pub archived: bool,
    /// Muted (until `muted_until_ms`, 0: for ever).
    pub muted: bool,
    /// When the mute ends (ms; 0: never).
    pub muted_until_ms: i64,
    /// Pinned.
    pub pinned: bool,
    /// Marked read (`Some(false)`: marked unread), if ever set.
    pub marked_read: Option<bool>,
}

/// The settings a key share writes (inside the receiving transaction).
pub(super) fn key_share_settings(
    k: &AppStateKeyShare,
) -> Result<Vec<(String, Vec<u8>)>, SessionError> {
    let mut out = Vec::new();
    for key in &k.keys {
        if key.id.len() != 6 || key.data.len() != 32 {
            return Err(SessionError::InvalidMessage("app-state key".into()));
        }
        out.push((format!("{KEY_PREFIX}{}", hex(&key.id)), key.data.clone()));
    }
    if !k.current.is_empty() {
        if !k.keys.iter().any(|x| x.id == k.current) {
            return Err(SessionError::InvalidMessage(
                "current key not shared".into(),
            ));
        }
        out.push((CURRENT_KEY.to_string(), k.current.clone()));
    }
    Ok(out)
}

/// The setting that holds history notice `chunk` until it is imported.
pub(super) fn history_setting(chunk: u32) -> String {
    format!("{HISTORY_PREFIX}{chunk:08}")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Client {
    // ------------------------------------------------------------ keys

    fn sync_key(&self, id: &[u8]) -> Option<SyncKey> {
        let data = self
            .with_store(|s| s.setting(&format!("{KEY_PREFIX}{}", hex(id))))
            .ok()??;
        let data: [u8; 32] = data.as_slice().try_into().ok()?;
        Some(SyncKey::new(id.to_vec(), data))
    }

    /// The key to write with: the primary makes the first one.
    fn current_sync_key(&self) -> Result<SyncKey, ClientError> {
        if let Some(id) = self.with_store(|s| s.setting(CURRENT_KEY))? {
            if let Some(k) = self.sync_key(&id) {
                return Ok(k);
            }
        }
        let me = self.address()?;
        if me.device_id != PRIMARY_DEVICE {
            return Err(appstate::AppStateError::UnknownKey(Vec::new()).into());
        }
        let epoch = (OsRng.next_u32() % 65_536) + 1;
        self.new_sync_key(epoch)
    }

    fn new_sync_key(&self, epoch: u32) -> Result<SyncKey, ClientError> {
        let k = SyncKey::generate(PRIMARY_DEVICE as u16, epoch, &mut OsRng);
        self.with_store(|s| {
            s.transaction(|s| {
                s.set_setting(&format!("{KEY_PREFIX}{}", hex(k.id())), k.data())?;
                s.set_setting(CURRENT_KEY, k.id())
            })
        })?;
        Ok(k)
    }

    /// Every app-state key this device holds.
    fn all_sync_keys(&self) -> Result<Vec<AppStateKey>, ClientError> {
        let rows = self.with_store(|s| s.settings_with_prefix(KEY_PREFIX))?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, data)| {
                let hexid = k.strip_prefix(KEY_PREFIX)?;
                let id: Vec<u8> = (0..hexid.len() / 2)
                    .map(|i| u8::from_str_radix(hexid.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect::<Option<_>>()?;
                Some(AppStateKey { id, data })
            })
            .collect())
    }

    /// Send the app-state keys to `devices` of this account.
    async fn share_keys(&self, devices: &[u32], only_current: bool) -> Result<(), ClientError> {
        let me = self.address()?;
        let current = self.current_sync_key()?;
        let keys = if only_current {
            vec![AppStateKey {
                id: current.id().to_vec(),
                data: current.data().to_vec(),
            }]
        } else {
            self.all_sync_keys()?
        };
        let content = self.stamp(Content::of(Body::KeyShare(AppStateKeyShare {
            keys,
            current: current.id().to_vec(),
            expired_epoch: 0,
        })));
        let sent_at = self.timestamp();
        self.send_control(&me.name, devices, &content, sent_at)
            .await
    }

    /// After a device was removed: a new key, shared with the devices that remain
    /// (the removed one cannot read anything written from now on).
    pub(super) async fn rotate_app_state_key(&self) -> Result<(), ClientError> {
        let epoch = self
            .current_sync_key()?
            .epoch()
            .unwrap_or(0)
            .wrapping_add(1);
        self.new_sync_key(epoch)?;
        let devices = self.own_devices()?;
        if devices.is_empty() {
            return Ok(());
        }
        self.share_keys(&devices, true).await
    }

    // ------------------------------------------------------------ collections

    fn collection(&self, name: &str) -> Result<CollectionState, ClientError> {
        Ok(
            match self.with_store(|s| s.setting(&format!("{STATE_PREFIX}{name}")))? {
                Some(b) => CollectionState::decode(&b).map_err(appstate::AppStateError::from)?,
                None => CollectionState::new(name),
            },
        )
    }

    fn save_collection(&self, state: &CollectionState) -> Result<(), ClientError> {
        Ok(self.with_store(|s| {
            s.set_setting(&format!("{STATE_PREFIX}{}", state.name()), &state.encode())
        })?)
    }

    /// Apply what the relay has for `name` beyond this device's version; on a patch
    /// that does not verify or does not follow, rebuild from the snapshot.
    pub(super) async fn sync_collection(&self, name: &str) -> Result<(), ClientError> {
        let _one = self.inner.sync.lock().await;
        self.sync_collection_locked(name).await
    }

    async fn sync_collection_locked(&self, name: &str) -> Result<(), ClientError> {
        let before = self.collection(name)?;
        let r = self.app_state_get(name, before.version(), false).await?;
        let keys = |id: &[u8]| self.sync_key(id);
        let mut state = before.clone();
        let mut applied = Vec::new();
        let mut failed = None;
        for p in &r.patches {
            match state.apply_patch(&p.data, keys) {
                Ok((s, a)) => {
                    state = s;
                    applied.extend(a);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none() && state.version() < r.latest_version {
            failed = Some(appstate::AppStateError::VersionGap {
                expected: state.version() + 1,
                got: r.latest_version,
            });
        }
        if let Some(e) = failed {
            self.emit(Event::AppStateRejected {
                collection: name.to_string(),
                reason: e.to_string(),
            });
            let (s, a) = self.recover(name, &before).await?;
            state = s;
            applied = a;
        }
        if state != before {
            self.save_collection(&state)?;
            self.apply_effects(&applied)?;
            self.emit(Event::AppStateChanged {
                collection: name.to_string(),
            });
        }
        Ok(())
    }

    /// Rebuild `name` from the relay's snapshot and the patches after it. A snapshot
    /// older than `current` is refused (a rollback).
    async fn recover(
        &self,
        name: &str,
        current: &CollectionState,
    ) -> Result<(CollectionState, Vec<appstate::AppliedMutation>), ClientError> {
        let r = self.app_state_get(name, 0, true).await?;
        let snap = r.snapshot.ok_or(appstate::AppStateError::InvalidArgument(
            "no snapshot to recover from",
        ))?;
        let keys = |id: &[u8]| self.sync_key(id);
        let (mut state, mut applied) = CollectionState::from_snapshot(name, &snap.data, keys)?;
        if state.version() < current.version() || state.version() != snap.version {
            return Err(appstate::AppStateError::VersionGap {
                expected: current.version(),
                got: state.version(),
            }
            .into());
        }
        let base = state.version();
        for p in r.patches.iter().filter(|p| p.version > base) {
            let (s, a) = state.apply_patch(&p.data, keys)?;
            state = s;
            applied.extend(a);
        }
        Ok((state, applied))
    }

    async fn app_state_get(
        &self,
        name: &str,
        after: u64,
        want_snapshot: bool,
    ) -> Result<proto::Response, ClientError> {
        let r = self
            .request(ClientKind::AppStateGet(proto::AppStateGet {
                collection: name.to_string(),
                after_version: after,
                want_snapshot,
            }))
            .await?;
        if r.ok {
            Ok(r)
        } else {
            Err(relay_error(&r))
        }
    }

    /// Write `mutations` to their collection: pull first, prepare on top, push;
    /// on a conflict (another device wrote first) pull and prepare again.
    async fn push_mutations(&self, mutations: Vec<Mutation>) -> Result<(), ClientError> {
        let Some(name) = mutations
            .first()
            .and_then(|m| appstate::collection_for(&m.index))
        else {
            return Err(appstate::AppStateError::InvalidArgument("unknown index").into());
        };
        let _one = self.inner.sync.lock().await;
        let me = self.address()?;
        for _attempt in 0..8 {
            self.sync_collection_locked(name).await?;
            let state = self.collection(name)?;
            let key = self.current_sync_key()?;
            let prepared = state.prepare_patch(&mutations, &key, me.device_id, &mut OsRng)?;
            let version = prepared.version();
            // A snapshot with every patch (the relay keeps the newest): whatever
            // patch the relay drops or alters, the collection can be rebuilt.
            let snapshot = prepared.state().snapshot(&key);
            let r = self
                .request(ClientKind::AppStatePut(proto::AppStatePut {
                    collection: name.to_string(),
                    version,
                    patch: prepared.bytes().to_vec(),
                    snapshot,
                }))
                .await?;
            if r.ok {
                let mut state = state;
                prepared.commit(&mut state)?;
                self.save_collection(&state)?;
                let applied: Vec<appstate::AppliedMutation> = mutations
                    .iter()
                    .map(|m| appstate::AppliedMutation {
                        op: m.op,
                        index: m.index.clone(),
                        value: m.value.clone(),
                    })
                    .collect();
                self.apply_effects(&applied)?;
                return Ok(());
            }
            if r.error_code != "Conflict" {
                return Err(relay_error(&r));
            }
        }
        Err(ClientError::Relay {
            code: "Conflict".into(),
            message: "the collection kept changing".into(),
        })
    }

    /// Local effects of synced mutations: a chat marked read is read here too.
    fn apply_effects(&self, applied: &[appstate::AppliedMutation]) -> Result<(), ClientError> {
        for m in applied {
            let read = m.value.mark_read.as_ref().and_then(|r| r.read);
            if let (Some(true), [kind, chat]) = (read, m.index.as_slice()) {
                if kind == "markChatAsRead" {
                    self.with_store(|s| {
                        let id = s.chat_id(chat)?;
                        s.mark_chat_read(id)
                    })?;
                }
            }
        }
        Ok(())
    }

    fn value(ts: i64) -> SyncActionValue {
        SyncActionValue {
            timestamp: Some(ts),
            ..Default::default()
        }
    }

    /// Archive or unarchive the chat with `peer` on every device of this account.
    pub async fn set_archived(&self, peer: &str, archived: bool) -> Result<(), ClientError> {
        let mut v = Self::value(now_ms() as i64);
        v.archive = Some(appstate::proto::ArchiveAction {
            archived: Some(archived),
        });
        self.push_mutations(vec![Mutation::set(appstate::archive_index(peer), v)])
            .await
    }

    /// Mute the chat with `peer` (until `until_ms`, 0: for ever) or unmute it.
    pub async fn set_muted(
        &self,
        peer: &str,
        muted: bool,
        until_ms: i64,
    ) -> Result<(), ClientError> {
        let mut v = Self::value(now_ms() as i64);
        v.mute = Some(appstate::proto::MuteAction {
            muted: Some(muted),
            until_ms: Some(until_ms),
        });
        self.push_mutations(vec![Mutation::set(appstate::mute_index(peer), v)])
            .await
    }

    /// Pin or unpin the chat with `peer`.
    pub async fn set_pinned(&self, peer: &str, pinned: bool) -> Result<(), ClientError> {
        let mut v = Self::value(now_ms() as i64);
        v.pin = Some(appstate::proto::PinAction {
            pinned: Some(pinned),
        });
        self.push_mutations(vec![Mutation::set(appstate::pin_index(peer), v)])
            .await
    }

    /// Name a contact (on every device of this account).
    pub async fn set_contact_name(&self, user: &str, name: &str) -> Result<(), ClientError> {
        let mut v = Self::value(now_ms() as i64);
        v.contact = Some(appstate::proto::ContactAction {
            full_name: Some(name.to_string()),
        });
        self.push_mutations(vec![Mutation::set(appstate::contact_index(user), v)])
            .await
    }

    /// A synced setting (`name` = value) for every device of this account.
    pub async fn set_synced_setting(&self, name: &str, value: &str) -> Result<(), ClientError> {
        let mut v = Self::value(now_ms() as i64);
        v.setting = Some(appstate::proto::SettingAction {
            value: Some(value.to_string()),
        });
        self.push_mutations(vec![Mutation::set(appstate::setting_index(name), v)])
            .await
    }

    /// Tell the account's other devices that the chat with `peer` was read.
    pub(super) async fn sync_read_marker(&self, peer: &str) -> Result<(), ClientError> {
        if self.own_devices()?.is_empty() {
            return Ok(());
        }
        let mut v = Self::value(now_ms() as i64);
        v.mark_read = Some(appstate::proto::MarkReadAction { read: Some(true) });
        self.push_mutations(vec![Mutation::set(appstate::mark_read_index(peer), v)])
            .await
    }

    /// The synced state of the chat with `peer`.
    pub fn chat_state(&self, peer: &str) -> Result<ChatState, ClientError> {
        let low = self.collection(appstate::REGULAR_LOW)?;
        let high = self.collection(appstate::REGULAR_HIGH)?;
        let mut c = ChatState::default();
        if let Some(a) = low
            .get(&appstate::archive_index(peer))
            .and_then(|v| v.archive.as_ref())
        {
            c.archived = a.archived.unwrap_or(false);
        }
        if let Some(p) = low
            .get(&appstate::pin_index(peer))
            .and_then(|v| v.pin.as_ref())
        {
            c.pinned = p.pinned.unwrap_or(false);
        }
        if let Some(r) = low
            .get(&appstate::mark_read_index(peer))
            .and_then(|v| v.mark_read.as_ref())
        {
            c.marked_read = r.read;
        }
        if let Some(m) = high
            .get(&appstate::mute_index(peer))
            .and_then(|v| v.mute.as_ref())
        {
            c.muted = m.muted.unwrap_or(false);
            c.muted_until_ms = m.until_ms.unwrap_or(0);
        }
        Ok(c)
    }

    /// The synced name of a contact.
    pub fn contact_name(&self, user: &str) -> Result<Option<String>, ClientError> {
        Ok(self
            .collection(appstate::CRITICAL_UNBLOCK_LOW)?
            .get(&appstate::contact_index(user))
            .and_then(|v| v.contact.as_ref())
            .and_then(|c| c.full_name.clone()))
    }

    /// A synced setting's value.
    pub fn synced_setting(&self, name: &str) -> Result<Option<String>, ClientError> {
        Ok(self
            .collection(appstate::CRITICAL_BLOCK)?
            .get(&appstate::setting_index(name))
            .and_then(|v| v.setting.as_ref())
            .and_then(|s| s.value.clone()))
    }

    /// Pull every collection (after a reconnect, or when keys arrive).
    pub async fn sync_app_state(&self) -> Result<(), ClientError> {
        for name in appstate::COLLECTIONS {
            self.sync_collection(name).await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ after linking

    /// On the primary, once a companion is linked: its keys, then its history.
    pub(super) async fn after_link(&self, device_id: u32) -> Result<(), ClientError> {
        self.share_keys(&[device_id], false).await?;
        // Groups before history: the history's group chats then have their groups.
        self.share_groups(device_id).await?;
        self.send_history(device_id).await
    }

    /// Pack recent chats, upload them as encrypted chunks and send each chunk's key
    /// to `device_id`.
    async fn send_history(&self, device_id: u32) -> Result<(), ClientError> {
        let me = self.address()?;
        let cfg = self.inner.config.history.clone();
        let since = now_ms() as i64 - i64::from(cfg.days) * 86_400_000;
        let messages: Vec<HistoryMessage> = self.with_store(|s| {
            let mut out = Vec::new();
            for chat in s.chats()? {
                let mut latest = s.latest_messages(chat.id, cfg.max_messages_per_chat)?;
                latest.retain(|m| m.sent_at >= since);
                latest.sort_by_key(|m| m.id);
                out.extend(latest.into_iter().map(|m| HistoryMessage {
                    peer: chat.peer.clone(),
                    outgoing: m.direction == MessageDirection::Outgoing,
                    sender: m.sender,
                    sender_device: m.sender_device,
                    body: m.body,
                    sent_at: m.sent_at,
                    received_at: m.received_at.unwrap_or(0),
                    status: m.status.code() as u32,
                }));
            }
            Ok::<_, ClientError>(out)
        })?;
        let per = cfg.chunk_messages.max(1) as usize;
        let chunks: Vec<&[HistoryMessage]> = messages.chunks(per).collect();
        let total = chunks.len() as u32;
        for (i, part) in chunks.into_iter().enumerate() {
            let chunk = HistoryChunk {
                chunk_order: i as u32,
                messages: part.to_vec(),
            };
            let key = MediaKey::generate(&mut OsRng);
            let (blob, digest) =
                history::pack(&chunk, &key).map_err(|e| ClientError::Protocol(e.to_string()))?;
            let blob_id = self.upload_blob(&blob, |_| {}).await?;
            let notice = self.stamp(Content::of(Body::History(HistoryNotice {
                blob_id,
                media_key: key.as_bytes().to_vec(),
                file_sha256: digest.file_sha256.to_vec(),
                file_enc_sha256: digest.file_enc_sha256.to_vec(),
                file_length: digest.file_length,
                chunk_order: i as u32,
                chunks: total,
            })));
            let sent_at = self.timestamp();
            self.send_control(&me.name, &[device_id], &notice, sent_at)
                .await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ receiving

    /// Keys and history notices arrived (already stored): act on them.
    pub(super) async fn on_control(&self, plaintexts: Vec<Vec<u8>>) {
        let mut keys = false;
        for pt in plaintexts {
            match Content::decode(&pt).map(|c| c.body) {
                Ok(Some(Body::KeyShare(_))) => keys = true,
                Ok(Some(Body::History(h))) => {
                    if let Err(e) = self.import_history(&h).await {
                        self.emit(Event::DecryptFailed {
                            from: ProtocolAddress::new(
                                self.address().map(|a| a.name).unwrap_or_default(),
                                PRIMARY_DEVICE,
                            ),
                            error: format!("history chunk {}: {e}", h.chunk_order),
                        });
                    }
                }
                _ => {}
            }
        }
        if keys {
            let _ = self.sync_app_state().await;
        }
    }

    /// Download, check and import one history chunk (idempotent: a chunk imported
    /// twice adds nothing), then forget its notice.
    async fn import_history(&self, h: &HistoryNotice) -> Result<(), ClientError> {
        let _one = self.inner.history.lock().await;
        if self
            .with_store(|s| s.setting(&history_setting(h.chunk_order)))?
            .is_none()
        {
            return Ok(()); // imported already (live and on resume: once)
        }
        let key = MediaKey::from_slice(&h.media_key)
            .ok_or_else(|| ClientError::Protocol("history key".into()))?;
        let expected = MediaExpected {
            file_sha256: h
                .file_sha256
                .as_slice()
                .try_into()
                .map_err(|_| ClientError::Protocol("history hash".into()))?,
            file_enc_sha256: h
                .file_enc_sha256
                .as_slice()
                .try_into()
                .map_err(|_| ClientError::Protocol("history hash".into()))?,
            file_length: Some(h.file_length),
        };
        let blob = self.download_blob(&h.blob_id).await?;
        let chunk = rt::blocking(move || history::unpack(&blob, &key, &expected))
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut by_peer: std::collections::BTreeMap<String, Vec<ImportedMessage>> =
            Default::default();
        for m in &chunk.messages {
            let status =
                MessageStatus::from_code(i64::from(m.status)).unwrap_or(MessageStatus::Failed);
            // Named by chat, sender device and the sender's timestamp (unique per
            // sending device): importing a chunk again adds nothing.
            let envelope_id = format!(
                "history:{}:{}:{}:{}",
                m.peer, m.sender, m.sender_device, m.sent_at
            );
            by_peer
                .entry(m.peer.clone())
                .or_default()
                .push(ImportedMessage {
                    sender: ProtocolAddress::new(&m.sender, m.sender_device),
                    direction: if m.outgoing {
                        MessageDirection::Outgoing
                    } else {
                        MessageDirection::Incoming
                    },
                    envelope_id: Some(envelope_id.into_bytes()),
                    body: m.body.clone(),
                    sent_at: m.sent_at,
                    received_at: (m.received_at != 0).then_some(m.received_at),
                    status,
                });
        }
        let mut imported = 0;
        self.with_store(|s| {
            s.transaction(|s| {
                for (peer, msgs) in &by_peer {
                    imported += s.import_messages(peer, msgs)?;
                }
                s.delete_setting(&history_setting(h.chunk_order))
            })
        })?;
        self.emit(Event::HistorySynced {
            chunks_done: h.chunk_order + 1,
            chunks: h.chunks,
            messages: imported as u32,
        });
        Ok(())
    }

    /// History notices received but not imported yet (a restart in between): import.
    pub(super) async fn resume_history(&self) {
        let Ok(pending) = self.with_store(|s| s.settings_with_prefix(HISTORY_PREFIX)) else {
            return;
        };
        if pending.is_empty() {
            return;
        }
        self.on_control(pending.into_iter().map(|(_, v)| v).collect())
            .await;
    }
}
