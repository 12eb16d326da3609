//! Multi-device for apps: link a companion (show a code / scan a code), unlink, and
//! the synced chat state (archive, mute, pin, contact names).

use std::sync::Arc;

use pawl_core::client::CompanionLinking;
use pawl_core::devices::link::LinkInvite;

use crate::client::PawlClient;
use crate::error::PawlError;
use crate::types::Address;
use crate::{guard, run};

/// A code for the new device's screen: show `qr_png` / `qr_svg` until `expires_at_ms`;
/// [`PawlLinking::next_code`] gives the next one.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LinkCode {
    /// The text in the QR code (`pawl-link:1,...`). It holds the link secret: show it,
    /// never send it anywhere.
    pub code: String,
    /// When it expires (ms since the Unix epoch).
    pub expires_at_ms: u64,
    /// The QR code as a PNG (4 pixels per module).
    pub qr_png: Vec<u8>,
    /// The QR code as an SVG document.
    pub qr_svg: String,
}

/// What a scanned code asks for: show it to the user before [`PawlClient::link_device`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LinkRequestInfo {
    /// The new device's identity key (33 bytes).
    pub identity_key: Vec<u8>,
    /// Its platform (one character: `0` unknown, `c` macOS, `7` desktop, `9` web, ...).
    pub platform: String,
}

/// A chat's state, the same on every device of the account.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatState {
    /// Archived.
    pub archived: bool,
    /// Muted.
    pub muted: bool,
    /// When the mute ends (ms; 0: never).
    pub muted_until_ms: i64,
    /// Pinned.
    pub pinned: bool,
}

/// Check a scanned link code and say what it asks for (an invalid code is
/// `InvalidArgument`).
#[uniffi::export]
pub fn parse_link_code(code: String) -> Result<LinkRequestInfo, PawlError> {
    guard(|| {
        let invite =
            LinkInvite::parse(&code).map_err(|e| PawlError::invalid_argument(e.to_string()))?;
        Ok(LinkRequestInfo {
            identity_key: invite.identity.serialize().to_vec(),
            platform: invite.platform.to_string(),
        })
    })
}

/// A new device waiting to be linked (from [`PawlClient::start_linking`]).
#[derive(uniffi::Object)]
pub struct PawlLinking {
    inner: Arc<tokio::sync::Mutex<Option<CompanionLinking>>>,
}

impl std::fmt::Debug for PawlLinking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PawlLinking")
    }
}

#[uniffi::export]
impl PawlLinking {
    /// The next code to show (the first at once, then one each time the last
    /// expires); `None` once the primary has answered or the codes ran out.
    pub async fn next_code(&self) -> Result<Option<LinkCode>, PawlError> {
        let inner = self.inner.clone();
        run(async move {
            let mut g = inner.lock().await;
            let Some(l) = g.as_mut() else {
                return Ok(None);
            };
            let Some(c) = l.next_code().await else {
                return Ok(None);
            };
            let qr = c.qr()?;
            Ok(Some(LinkCode {
                qr_png: qr
                    .to_png(4)
                    .map_err(|e| PawlError::internal(e.to_string()))?,
                qr_svg: qr.to_svg(),
                code: c.code,
                expires_at_ms: c.expires_at_ms,
            }))
        })
        .await
    }

    /// Wait until the link completes: this device's address (then call `start`).
    pub async fn finished(&self) -> Result<Address, PawlError> {
        let inner = self.inner.clone();
        run(async move {
            let l = inner
                .lock()
                .await
                .take()
                .ok_or_else(|| PawlError::invalid_argument("finished was called already"))?;
            Ok((&l.finished().await?).into())
        })
        .await
    }
}

#[uniffi::export]
impl PawlClient {
    /// On a new (unregistered) device: ask the relay for link codes to show.
    pub async fn start_linking(&self) -> Result<Arc<PawlLinking>, PawlError> {
        let c = self.client.clone();
        run(async move {
            let l = c.start_linking().await?;
            Ok(Arc::new(PawlLinking {
                inner: Arc::new(tokio::sync::Mutex::new(Some(l))),
            }))
        })
        .await
    }

    /// On the primary: link the device whose code was scanned (ask the user first,
    /// showing [`parse_link_code`]'s answer). Returns the new device's id once it has
    /// accepted; its keys and recent history are sent to it.
    pub async fn link_device(&self, code: String) -> Result<u32, PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.link_device(&code, |_| true).await?) }).await
    }

    /// On the primary: unlink a device (it can read nothing sent afterwards).
    pub async fn unlink_device(&self, device_id: u32) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.unlink_device(device_id).await?) }).await
    }

    /// This account's other devices (ids).
    pub fn own_devices(&self) -> Result<Vec<u32>, PawlError> {
        guard(|| Ok(self.client.own_devices()?))
    }

    /// Archive or unarchive a chat on every device of the account.
    pub async fn set_archived(&self, peer: String, archived: bool) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.set_archived(&peer, archived).await?) }).await
    }

    /// Mute (until `until_ms`, 0: for ever) or unmute a chat.
    pub async fn set_muted(
        &self,
        peer: String,
        muted: bool,
        until_ms: i64,
    ) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.set_muted(&peer, muted, until_ms).await?) }).await
    }

    /// Pin or unpin a chat.
    pub async fn set_pinned(&self, peer: String, pinned: bool) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.set_pinned(&peer, pinned).await?) }).await
    }

    /// Name a contact on every device of the account.
    pub async fn set_contact_name(&self, user: String, name: String) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.set_contact_name(&user, &name).await?) }).await
    }

    /// Pull the app state other devices wrote (it also arrives by itself).
    pub async fn sync_app_state(&self) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.sync_app_state().await?) }).await
    }

    /// A chat's synced state.
    pub fn chat_state(&self, peer: String) -> Result<ChatState, PawlError> {
        guard(|| {
            let s = self.client.chat_state(&peer)?;
            Ok(ChatState {
                archived: s.archived,
                muted: s.muted,
                muted_until_ms: s.muted_until_ms,
                pinned: s.pinned,
            })
        })
    }

    /// A contact's synced name.
    pub fn contact_name(&self, user: String) -> Result<Option<String>, PawlError> {
        guard(|| Ok(self.client.contact_name(&user)?))
    }
}
