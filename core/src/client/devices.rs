//! Multi-device in the client: linking a companion by QR code (both sides), the
//! device lists a device checks itself before it encrypts ([`crate::devices`]),
//! unlinking, and copies of every sent message to the account's other devices.

use prost::Message as _;
use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot};

use super::transport::Socket;
use super::{
    bundle_from_wire, next_frame, now_ms, relay_error, rt, Client, ClientError, Event,
    ACCOUNT_DEVICE, ACCOUNT_USER,
};
use crate::address::ProtocolAddress;
use crate::devices::adv::{
    DeviceIdentityDetails, DeviceListData, SignedDeviceIdentity, SignedDeviceList, PRIMARY_DEVICE,
};
use crate::devices::link::{CompanionLink, LinkInvite, LinkOffer};
use crate::devices::{verify_devices, DeviceEntry, DeviceError, ListPolicy};
use crate::error::{SessionError, StoreError};
use crate::keys::IdentityKey;
use crate::store::{IdentityKeyStore, SessionStore};
use crate::wire::content::{Body, Content, SentTranscript};
use crate::wire::relay::{self as proto, ClientFrame, ClientKind, RelayFrame, RelayKind};

/// Primary only: the device list it signed last (encoded [`DeviceListData`]).
const OWN_LIST: &str = "md.own_list";
/// Per user: what this device knows of the user's signed device list.
const LIST_CACHE: &str = "md.list.";
/// How long a user without a signed list (no companions) is trusted as it is.
const NO_LIST_RECHECK_MS: u64 = 3600 * 1000;

/// What a device remembers of a user's device list.
#[derive(Clone, PartialEq, prost::Message)]
struct CachedList {
    /// Newest version seen (an older one is a replay).
    #[prost(uint64, tag = "1")]
    version: u64,
    #[prost(uint64, tag = "2")]
    timestamp_ms: u64,
    /// Re-read the list from the relay after this.
    #[prost(uint64, tag = "3")]
    stale_at_ms: u64,
    /// Devices the relay lists that failed the checks (sent nothing).
    #[prost(uint32, repeated, tag = "4")]
    unverified: Vec<u32>,
}

/// A code for the companion's screen: show it as a QR code until it expires; the
/// next one follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkCode {
    /// The text in the QR code (`pawl-link:1,...`); it holds the link secret, so it
    /// is shown, never sent anywhere.
    pub code: String,
    /// When it expires (ms since the epoch).
    pub expires_at_ms: u64,
}

#[cfg(feature = "qr")]
impl LinkCode {
    /// The QR code as an image (SVG, PNG or terminal text).
    pub fn qr(&self) -> Result<crate::fingerprint::QrCodeImage, ClientError> {
        crate::fingerprint::QrCodeImage::new(self.code.as_bytes())
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }
}

/// A companion waiting to be linked ([`Client::start_linking`]).
#[derive(Debug)]
pub struct CompanionLinking {
    codes: mpsc::UnboundedReceiver<LinkCode>,
    done: oneshot::Receiver<Result<ProtocolAddress, ClientError>>,
}

impl CompanionLinking {
    /// The next code to show (the first at once, then one each time the last
    /// expires); `None` once linking ended.
    pub async fn next_code(&mut self) -> Option<LinkCode> {
        self.codes.recv().await
    }

    /// Wait until the link completes: this device's address in the account.
    pub async fn finished(self) -> Result<ProtocolAddress, ClientError> {
        self.done
            .await
            .unwrap_or_else(|_| Err(ClientError::Transport("linking stopped".into())))
    }
}

/// What the primary's app shows the user before it links a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRequest {
    /// The new device's identity key.
    pub identity: IdentityKey,
    /// Its platform character (from the code).
    pub platform: char,
    /// The device id it will get.
    pub device_id: u32,
}

impl From<DeviceError> for ClientError {
    fn from(e: DeviceError) -> Self {
        ClientError::Device(e)
    }
}

impl Client {
    // ------------------------------------------------------------ linking

    /// On a new device (not registered): become a companion of an account. Shows
    /// codes through the returned [`CompanionLinking`] until the primary scans one
    /// and the link completes (or the codes run out, about 160 s). Then call
    /// [`start`](Self::start). The code names `ClientConfig::platform`.
    pub async fn start_linking(&self) -> Result<CompanionLinking, ClientError> {
        if self.address().is_ok() {
            return Err(ClientError::Config(
                "this device is registered already".into(),
            ));
        }
        let (mut ws, nonce) = self.connect_for_challenge().await?;
        let (identity, registration_id) = self.with_store(|s| {
            Ok::<_, StoreError>((s.identity_key_pair()?, s.local_registration_id()?))
        })?;
        let sig = identity.private_key().sign(
            &proto::auth_message(&nonce, proto::LINK_USER, 0),
            &mut OsRng,
        );
        let start = ClientFrame {
            request_id: 1,
            kind: Some(ClientKind::LinkStart(proto::LinkStart {
                identity_key: identity.identity_key().serialize().to_vec(),
                registration_id,
                signature: sig.to_vec(),
            })),
        };
        ws.send(super::encode(&start)).await?;
        let first = match next_frame(&mut ws).await {
            Some(Ok(RelayFrame {
                kind: Some(RelayKind::Response(r)),
            })) if r.ok => r,
            Some(Ok(RelayFrame {
                kind: Some(RelayKind::Response(r)),
            })) => return Err(relay_error(&r)),
            Some(Err(e)) => return Err(e),
            _ => return Err(ClientError::Protocol("no answer to LinkStart".into())),
        };
        let (codes_tx, codes) = mpsc::unbounded_channel();
        let (done_tx, done) = oneshot::channel();
        let me = self.clone();
        rt::spawn(async move {
            let r = me
                .companion_link(ws, first.link_ref, first.link_expires_ms, codes_tx)
                .await;
            let _ = done_tx.send(r);
        });
        Ok(CompanionLinking { codes, done })
    }

    async fn companion_link(
        &self,
        mut ws: Socket,
        first_ref: Vec<u8>,
        first_expiry: u64,
        codes: mpsc::UnboundedSender<LinkCode>,
    ) -> Result<ProtocolAddress, ClientError> {
        let identity = self.with_store(|s| s.identity_key_pair())?;
        let platform = self.inner.config.platform;
        let show = |r: Vec<u8>, expires_at_ms: u64| {
            let link = CompanionLink::new(r, identity.identity_key(), platform, &mut OsRng);
            let _ = codes.send(LinkCode {
                code: link.invite().to_code(),
                expires_at_ms,
            });
            link
        };
        let mut link = show(first_ref, first_expiry);
        let offered = loop {
            match next_frame(&mut ws).await {
                Some(Ok(RelayFrame {
                    kind: Some(RelayKind::LinkCode(c)),
                })) => link = show(c.link_ref, c.expires_ms),
                Some(Ok(RelayFrame {
                    kind: Some(RelayKind::LinkOffered(o)),
                })) => break o,
                Some(Ok(RelayFrame {
                    kind: Some(RelayKind::Response(r)),
                })) if !r.ok => return Err(relay_error(&r)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => return Err(ClientError::Transport("connection closed".into())),
            }
        };
        drop(codes);
        let offer = LinkOffer::decode(offered.offer.as_slice())
            .map_err(|_| DeviceError::Malformed("link offer"))?;
        let accepted = link.accept(&offer, &identity, &mut OsRng)?;
        if accepted.details.user != offered.user || accepted.details.device_id != offered.device_id
        {
            return Err(DeviceError::NotForThisDevice.into());
        }
        let finish = ClientFrame {
            request_id: 2,
            kind: Some(ClientKind::LinkFinish(proto::LinkFinish {
                signed_identity: accepted.identity.encode_to_vec(),
                device_list: accepted.device_list.to_bytes(),
                keys: Some(self.new_prekeys(self.inner.config.prekey_batch)?),
            })),
        };
        ws.send(super::encode(&finish)).await?;
        loop {
            match next_frame(&mut ws).await {
                Some(Ok(RelayFrame {
                    kind: Some(RelayKind::Response(r)),
                })) if r.request_id == 2 && r.ok => break,
                Some(Ok(RelayFrame {
                    kind: Some(RelayKind::Response(r)),
                })) if r.request_id == 2 => return Err(relay_error(&r)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => return Err(ClientError::Transport("connection closed".into())),
            }
        }
        ws.close().await;
        let user = accepted.details.user.clone();
        let device = accepted.details.device_id;
        let now = now_ms();
        self.with_store(|s| {
            s.transaction(|s| {
                s.save_identity(
                    &ProtocolAddress::new(&user, PRIMARY_DEVICE),
                    &accepted.primary,
                )?;
                let cache = CachedList {
                    version: accepted.list.version,
                    timestamp_ms: accepted.list.timestamp_ms,
                    // Read the whole list (other companions) at the first send.
                    stale_at_ms: now,
                    unverified: vec![],
                };
                s.set_setting(&format!("{LIST_CACHE}{user}"), &cache.encode_to_vec())?;
                s.set_setting(ACCOUNT_USER, user.as_bytes())?;
                s.set_setting(ACCOUNT_DEVICE, &device.to_be_bytes())
            })
        })?;
        Ok(ProtocolAddress::new(user, device))
    }

    /// On the primary: link the companion whose code was scanned (`code`, the text
    /// of its QR code). `confirm` is asked first (show the request, ask for the
    /// user's PIN or biometrics); `false` refuses. Waits until the companion has
    /// accepted (up to a minute), then sends it the app-state keys and recent history.
    /// Returns the new device's id.
    pub async fn link_device(
        &self,
        code: &str,
        confirm: impl FnOnce(&LinkRequest) -> bool,
    ) -> Result<u32, ClientError> {
        let me = self.address()?;
        if me.device_id != PRIMARY_DEVICE {
            return Err(ClientError::Config(
                "only the primary device links devices".into(),
            ));
        }
        let invite = LinkInvite::parse(code)?;
        let r = self.get_devices(&me.name).await?;
        let device_id = r.devices.iter().copied().max().unwrap_or(PRIMARY_DEVICE) + 1;
        let request = LinkRequest {
            identity: invite.identity,
            platform: invite.platform,
            device_id,
        };
        if !confirm(&request) {
            return Err(DeviceError::Link("refused on the primary".into()).into());
        }
        let now = now_ms();
        let mut list = self.own_list(&me.name)?;
        let key_index = list.current_index + 1;
        list.version += 1;
        list.timestamp_ms = now;
        list.current_index = key_index;
        list.valid_indexes.push(key_index);
        let details = DeviceIdentityDetails {
            user: me.name.clone(),
            device_id,
            timestamp_ms: now,
            key_index,
            identity_key: invite.identity.serialize().to_vec(),
        };
        let identity = self.with_store(|s| s.identity_key_pair())?;
        let offer = invite.offer(&identity, &details, &list, &mut OsRng)?;
        let r = self
            .request(ClientKind::LinkOffer(proto::LinkOfferRequest {
                link_ref: invite.link_ref.clone(),
                device_id,
                offer: offer.encode_to_vec(),
            }))
            .await?;
        if !r.ok {
            return Err(relay_error(&r));
        }
        // The companion checks the offer and answers the relay; wait for the device.
        let started = rt::Monotonic::now();
        loop {
            let r = self.get_devices(&me.name).await?;
            if r.devices.contains(&device_id) {
                break;
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                return Err(DeviceError::Link("the companion did not answer".into()).into());
            }
            rt::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.with_store(|s| s.set_setting(OWN_LIST, &list.encode_to_vec()))?;
        self.verified_devices(&me.name, true).await?;
        self.emit(Event::DeviceLinked { device_id });
        self.after_link(device_id).await?;
        Ok(device_id)
    }

    /// On the primary: unlink a companion. The relay forgets it, the new signed list
    /// leaves it out (so peers stop encrypting to it), and the app-state key is
    /// rotated: it can read nothing written afterwards.
    pub async fn unlink_device(&self, device_id: u32) -> Result<(), ClientError> {
        let me = self.address()?;
        if me.device_id != PRIMARY_DEVICE || device_id == PRIMARY_DEVICE {
            return Err(ClientError::Config(
                "only the primary unlinks, and not itself".into(),
            ));
        }
        let r = self.get_devices(&me.name).await?;
        let key_index = r
            .identities
            .iter()
            .find(|e| e.device_id == device_id)
            .and_then(|e| SignedDeviceIdentity::decode_from(&e.signed_identity).ok())
            .and_then(|s| s.details().ok())
            .map(|d| d.key_index);
        let mut list = self.own_list(&me.name)?;
        list.version += 1;
        list.timestamp_ms = now_ms();
        if let Some(k) = key_index {
            list.valid_indexes.retain(|i| *i != k);
        }
        let identity = self.with_store(|s| s.identity_key_pair())?;
        let signed = SignedDeviceList::sign(&identity, &list, &mut OsRng);
        let r = self
            .request(ClientKind::RemoveDevice(proto::RemoveDevice {
                device_id,
                device_list: signed.to_bytes(),
            }))
            .await?;
        if !r.ok {
            return Err(relay_error(&r));
        }
        self.with_store(|s| {
            s.transaction(|s| {
                s.set_setting(OWN_LIST, &list.encode_to_vec())?;
                s.remove_device(&me.name, device_id)
            })
        })?;
        self.verified_devices(&me.name, true).await?;
        self.rotate_app_state_key().await?;
        Ok(())
    }

    /// On the primary: sign the device list again (version + 1, new timestamp) once
    /// it is older than half its TTL, so peers never see it expire (an expired list
    /// leaves the primary only). Runs on every connection, every quarter TTL.
    pub(super) async fn renew_device_list(&self) -> Result<bool, ClientError> {
        let me = self.address()?;
        if me.device_id != PRIMARY_DEVICE {
            return Ok(false);
        }
        let mut list = self.own_list(&me.name)?;
        let ttl = self.inner.config.device_list_ttl.as_millis() as u64;
        let now = now_ms();
        if list.version == 0 || now.saturating_sub(list.timestamp_ms) < ttl / 2 {
            return Ok(false);
        }
        list.version += 1;
        list.timestamp_ms = now;
        let identity = self.with_store(|s| s.identity_key_pair())?;
        let signed = SignedDeviceList::sign(&identity, &list, &mut OsRng);
        let r = self
            .request(ClientKind::PutDeviceList(proto::PutDeviceList {
                device_list: signed.to_bytes(),
            }))
            .await?;
        if !r.ok {
            return Err(relay_error(&r));
        }
        self.with_store(|s| s.set_setting(OWN_LIST, &list.encode_to_vec()))?;
        Ok(true)
    }

    /// The relay's answer to `GetDevices` for `user` (a refusal is an error).
    async fn get_devices(&self, user: &str) -> Result<proto::Response, ClientError> {
        let r = self
            .request(ClientKind::GetDevices(proto::GetDevices {
                user: user.to_string(),
            }))
            .await?;
        if r.ok {
            Ok(r)
        } else {
            Err(relay_error(&r))
        }
    }

    /// The account's other devices this device encrypts to (verified), ascending.
    pub fn own_devices(&self) -> Result<Vec<u32>, ClientError> {
        let me = self.address()?;
        Ok(self
            .with_store(|s| s.devices(&me.name))?
            .into_iter()
            .filter(|d| *d != me.device_id)
            .collect())
    }

    fn own_list(&self, user: &str) -> Result<DeviceListData, ClientError> {
        Ok(match self.with_store(|s| s.setting(OWN_LIST))? {
            Some(b) => DeviceListData::decode_from(&b)?,
            None => DeviceListData {
                user: user.to_string(),
                version: 0,
                timestamp_ms: 0,
                current_index: 0,
                valid_indexes: vec![],
            },
        })
    }

    /// The version of this account's device list as this device knows it (sent in
    /// every message: in-chat device consistency).
    pub(super) fn own_list_version(&self) -> u64 {
        let Ok(me) = self.address() else { return 0 };
        if me.device_id == PRIMARY_DEVICE {
            return self.own_list(&me.name).map_or(0, |l| l.version);
        }
        self.cached_list(&me.name)
            .ok()
            .flatten()
            .map_or(0, |c| c.version)
    }

    fn cached_list(&self, user: &str) -> Result<Option<CachedList>, ClientError> {
        Ok(self
            .with_store(|s| s.setting(&format!("{LIST_CACHE}{user}")))?
            .and_then(|b| CachedList::decode(b.as_slice()).ok()))
    }

    fn store_cached_list(&self, user: &str, c: &CachedList) -> Result<(), ClientError> {
        Ok(self.with_store(|s| s.set_setting(&format!("{LIST_CACHE}{user}"), &c.encode_to_vec()))?)
    }

    /// A message from `user` named device-list version `version`: if it is newer
    /// than the one known, re-read the list soon (in-chat device consistency).
    pub(super) fn saw_list_version(&self, user: &str, version: u64) {
        let Ok(Some(mut c)) = self.cached_list(user) else {
            return;
        };
        if version > c.version {
            let soon = now_ms() + self.inner.config.newer_list_ttl.as_millis() as u64;
            if soon < c.stale_at_ms {
                c.stale_at_ms = soon;
                let _ = self.store_cached_list(user, &c);
            }
        }
    }

    /// Devices of `user` the relay lists that this device refused (`Send.unverified`).
    pub(super) fn unverified_devices(&self, user: &str) -> Vec<u32> {
        self.cached_list(user)
            .ok()
            .flatten()
            .map(|c| c.unverified)
            .unwrap_or_default()
    }

    /// The devices of `user` to encrypt to (this device left out), each with a
    /// session: the cached list while it is fresh, else the relay's list checked
    /// against the primary's signatures (`force`: re-read now).
    pub(super) async fn verified_devices(
        &self,
        user: &str,
        force: bool,
    ) -> Result<Vec<u32>, ClientError> {
        let me = self.address()?;
        let now = now_ms();
        let not_me = |d: &u32| !(user == me.name && *d == me.device_id);
        let known: Vec<u32> = self
            .with_store(|s| s.devices(user))?
            .into_iter()
            .filter(not_me)
            .collect();
        let cache = self.cached_list(user)?;
        let fresh = cache.as_ref().is_some_and(|c| now < c.stale_at_ms);
        if !force && fresh && (!known.is_empty() || user == me.name) {
            self.ensure_sessions(user, &known).await?;
            return Ok(known);
        }
        let r = match self.get_devices(user).await {
            Ok(r) => r,
            Err(ClientError::NotConnected) if !known.is_empty() => return Ok(known),
            Err(e) => return Err(e),
        };
        if r.devices.is_empty() {
            return Err(ClientError::Relay {
                code: "NotFound".into(),
                message: format!("unknown user {user}"),
            });
        }
        let primary = self.primary_identity(user, &me).await?;
        let entries: Vec<DeviceEntry<'_>> = r
            .devices
            .iter()
            .map(|&d| DeviceEntry {
                device_id: d,
                signed_identity: r
                    .identities
                    .iter()
                    .find(|e| e.device_id == d)
                    .map_or(&[][..], |e| e.signed_identity.as_slice()),
            })
            .collect();
        let ttl = self.inner.config.device_list_ttl.as_millis() as u64;
        let policy = ListPolicy {
            known_version: cache.as_ref().map(|c| c.version),
            now_ms: now,
            ttl_ms: ttl,
        };
        let v = match verify_devices(user, &primary, Some(&r.device_list), &entries, &policy) {
            Ok(v) => v,
            Err(e) => {
                // A replayed or forged list: keep what was known (a removed device
                // stays removed; what the relay lists beyond it gets nothing) and say so.
                self.emit(Event::DeviceListRejected {
                    user: user.to_string(),
                    reason: e.to_string(),
                });
                let mut c = cache.unwrap_or_default();
                c.unverified = r
                    .devices
                    .iter()
                    .copied()
                    .filter(|d| not_me(d) && !known.contains(d))
                    .collect();
                self.store_cached_list(user, &c)?;
                self.ensure_sessions(user, &known).await?;
                return Ok(known);
            }
        };
        let mut unverified: Vec<u32> = v.rejected.iter().map(|r| r.0).collect();
        let mut devices = Vec::new();
        for (d, identity) in v.devices.iter().filter(|(d, _)| not_me(d)) {
            let expected = (*d != PRIMARY_DEVICE).then_some(identity);
            match self.ensure_session_with(user, *d, expected).await {
                Ok(()) => devices.push(*d),
                Err(ClientError::Device(_)) => unverified.push(*d),
                Err(e) => return Err(e),
            }
        }
        if !unverified.is_empty() {
            self.emit(Event::DeviceListRejected {
                user: user.to_string(),
                reason: format!("devices {unverified:?} are not vouched for by the primary"),
            });
        }
        self.with_store(|s| {
            s.transaction(|s| {
                for old in s.devices(user)? {
                    if not_me(&old) && !devices.contains(&old) {
                        s.remove_device(user, old)?;
                    }
                }
                Ok::<_, StoreError>(())
            })
        })?;
        let stale_at_ms = if v.version == 0 {
            now + NO_LIST_RECHECK_MS
        } else {
            v.timestamp_ms.saturating_add(ttl).max(now + 1)
        };
        self.store_cached_list(
            user,
            &CachedList {
                version: v.version.max(cache.map_or(0, |c| c.version)),
                timestamp_ms: v.timestamp_ms,
                stale_at_ms,
                unverified,
            },
        )?;
        Ok(devices)
    }

    /// The identity of `user`'s primary this device trusts: its own, the one stored
    /// at linking (own account), or the first one seen (trust on first use).
    async fn primary_identity(
        &self,
        user: &str,
        me: &ProtocolAddress,
    ) -> Result<IdentityKey, ClientError> {
        if user == me.name && me.device_id == PRIMARY_DEVICE {
            return self.identity_key();
        }
        let addr = ProtocolAddress::new(user, PRIMARY_DEVICE);
        if let Some(k) = self.with_store(|s| s.get_identity(&addr))? {
            return Ok(k);
        }
        self.ensure_session_with(user, PRIMARY_DEVICE, None).await?;
        self.with_store(|s| s.get_identity(&addr))?
            .ok_or_else(|| SessionError::NoSession(addr.to_string()).into())
    }

    /// A session with `user`'s device `d`, fetching its bundle if there is none; with
    /// `expected`, the device's identity must be that one (the one its primary signed).
    pub(super) async fn ensure_session_with(
        &self,
        user: &str,
        d: u32,
        expected: Option<&IdentityKey>,
    ) -> Result<(), ClientError> {
        let addr = ProtocolAddress::new(user, d);
        if self.with_store(|s| s.load_session(&addr))?.is_some() {
            if let (Some(want), Some(have)) =
                (expected, self.with_store(|s| s.get_identity(&addr))?)
            {
                if want != &have {
                    return Err(DeviceError::IdentityMismatch.into());
                }
            }
            self.with_store(|s| s.add_device(user, d, 0))?;
            return Ok(());
        }
        let r = self
            .request(ClientKind::FetchBundle(proto::FetchBundle {
                user: user.to_string(),
                device_id: d,
            }))
            .await?;
        let b = match (r.ok, r.bundle) {
            (true, Some(b)) => b,
            _ => {
                return Err(ClientError::Relay {
                    code: r.error_code,
                    message: r.error,
                })
            }
        };
        let bundle = bundle_from_wire(&b)?;
        if expected.is_some_and(|want| want != &bundle.identity_key) {
            return Err(DeviceError::IdentityMismatch.into());
        }
        self.with_store(|s| {
            s.transaction(|s| {
                crate::process_prekey_bundle(s, &addr, &bundle, &mut OsRng)?;
                s.add_device(user, d, b.registration_id)?;
                Ok::<_, SessionError>(())
            })
        })?;
        Ok(())
    }

    /// Copy what was sent to `peer` (its `content`) to this account's other devices.
    pub(super) async fn copy_to_own_devices(
        &self,
        peer: &str,
        content: &[u8],
        sent_at: u64,
    ) -> Result<(), ClientError> {
        let me = self.address()?;
        if peer == me.name {
            return Ok(());
        }
        let devices = self.verified_devices(&me.name, false).await?;
        if devices.is_empty() {
            return Ok(());
        }
        let transcript = self.stamp(Content::of(Body::Sent(SentTranscript {
            destination: peer.to_string(),
            content: content.to_vec(),
        })));
        self.send_control(&me.name, &devices, &transcript, sent_at)
            .await
    }

    /// Store and push a send without a message of its own (receipts, copies, keys).
    pub(super) async fn send_control(
        &self,
        user: &str,
        devices: &[u32],
        plaintext: &[u8],
        sent_at: u64,
    ) -> Result<(), ClientError> {
        let (_, send) = self.with_store(|s| {
            s.send_to_devices(user, devices, None, None, plaintext, sent_at as i64)
        })?;
        match self.flush_send(send.id).await {
            Ok(()) | Err(ClientError::NotConnected) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
