//! Groups: create, add and remove members, rename, leave, and send.
//!
//! Membership and name travel as [`GroupUpdate`] messages, pairwise-encrypted to every
//! device of every member (old and new) like any other message: the relay cannot add
//! a member, and receivers accept a change only from an admin of the state it
//! replaces, with a higher version (`SqliteStore::accept_group_update`).
//!
//! A group message is encrypted once with this device's sender key; each member
//! device gets a group envelope (relay type 7) with that ciphertext, and a device
//! that does not hold the current key also gets the key, pairwise-encrypted, in the
//! same envelope. The store tracks which device holds which key; when a device that
//! holds it is no longer a recipient (a member was removed or left, a device was
//! unlinked), the next send starts a new key first. Every device of every member is
//! a recipient, this account's other devices included.
//!
//! ```no_run
//! # async fn demo(client: pawl_core::client::Client) -> Result<(), pawl_core::client::ClientError> {
//! let group = client.create_group("Climbing", &["+4915187654321", "+4915100000003"]).await?;
//! client.send_group_text(&group.id, "Saturday at 10?").await?;
//! client.rename_group(&group.id, "Bouldering").await?;
//! client.remove_group_members(&group.id, &["+4915100000003"]).await?;
//! // The removed member's devices get nothing from here on; the key was rotated.
//! client.send_group_text(&group.id, "Just us two now").await?;
//! # Ok(()) }
//! ```

use rand_core::{OsRng, RngCore};

use super::{Client, ClientError, MediaMessage};
use crate::error::SessionError;
use crate::sqlite::{check_group_update, GroupInfo};
use crate::wire::content::{Body, Content, GroupUpdate, GROUP_ID_LEN};

fn group_error(e: SessionError) -> ClientError {
    match e {
        SessionError::InvalidMessage(m) | SessionError::InvalidArgument(m) => ClientError::Group(m),
        e => e.into(),
    }
}

impl Client {
    /// The groups this device knows (also those this account left or was removed
    /// from: `is_member` tells).
    pub fn groups(&self) -> Result<Vec<GroupInfo>, ClientError> {
        Ok(self.with_store(|s| s.groups())?)
    }

    /// One group by id.
    pub fn group(&self, group_id: &[u8]) -> Result<Option<GroupInfo>, ClientError> {
        Ok(self.with_store(|s| s.group(group_id))?)
    }

    /// Create a group with these members (and this account, its admin). Every
    /// member's devices (and this account's other devices) are told; a member that
    /// is not registered fails the call before anything is stored.
    pub async fn create_group(
        &self,
        name: &str,
        members: &[&str],
    ) -> Result<GroupInfo, ClientError> {
        let me = self.address()?;
        let mut id = vec![0u8; GROUP_ID_LEN];
        OsRng.fill_bytes(&mut id);
        let mut all: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        all.push(me.name.clone());
        all.sort();
        all.dedup();
        let u = GroupUpdate {
            group_id: id,
            version: 1,
            name: name.to_string(),
            members: all,
            admins: vec![me.name.clone()],
        };
        self.publish_group_update(None, u).await
    }

    /// Add members (admins only).
    pub async fn add_group_members(
        &self,
        group_id: &[u8],
        users: &[&str],
    ) -> Result<GroupInfo, ClientError> {
        self.change_group(group_id, |u| {
            u.members.extend(users.iter().map(|m| m.to_string()));
        })
        .await
    }

    /// Remove members (admins only). Their devices get this update and nothing sent
    /// to the group afterwards.
    pub async fn remove_group_members(
        &self,
        group_id: &[u8],
        users: &[&str],
    ) -> Result<GroupInfo, ClientError> {
        self.change_group(group_id, |u| {
            u.members.retain(|m| !users.contains(&m.as_str()));
            u.admins.retain(|m| !users.contains(&m.as_str()));
        })
        .await
    }

    /// Make members admins (admins only).
    pub async fn add_group_admins(
        &self,
        group_id: &[u8],
        users: &[&str],
    ) -> Result<GroupInfo, ClientError> {
        self.change_group(group_id, |u| {
            u.admins.extend(users.iter().map(|m| m.to_string()));
        })
        .await
    }

    /// Rename the group (admins only).
    pub async fn rename_group(
        &self,
        group_id: &[u8],
        name: &str,
    ) -> Result<GroupInfo, ClientError> {
        self.change_group(group_id, |u| u.name = name.to_string())
            .await
    }

    /// Leave the group (any member).
    pub async fn leave_group(&self, group_id: &[u8]) -> Result<GroupInfo, ClientError> {
        let me = self.address()?.name;
        self.change_group(group_id, |u| {
            u.members.retain(|m| *m != me);
            u.admins.retain(|m| *m != me);
        })
        .await
    }

    async fn change_group(
        &self,
        group_id: &[u8],
        change: impl FnOnce(&mut GroupUpdate),
    ) -> Result<GroupInfo, ClientError> {
        let g = self
            .group(group_id)?
            .ok_or_else(|| ClientError::Group("unknown group".into()))?;
        let mut u = g.update();
        change(&mut u);
        u.version = g.version + 1;
        for list in [&mut u.members, &mut u.admins] {
            list.sort();
            list.dedup();
        }
        self.publish_group_update(Some(&g), u).await
    }

    /// Check `u` as receivers will, make sure every member can be reached, store it,
    /// and send it to every device of the old and new members.
    async fn publish_group_update(
        &self,
        old: Option<&GroupInfo>,
        u: GroupUpdate,
    ) -> Result<GroupInfo, ClientError> {
        let me = self.address()?;
        check_group_update(&u).map_err(ClientError::Group)?;
        let mut users: Vec<String> = u.members.clone();
        if let Some(g) = old {
            users.extend(g.members.iter().cloned());
        }
        users.push(me.name.clone());
        users.sort();
        users.dedup();
        // Devices (and sessions) of every new member first: an unknown user fails the
        // change before it is stored.
        let mut targets = Vec::with_capacity(users.len());
        for user in &users {
            let new = old.is_none_or(|g| !g.is_member(user));
            match self.verified_devices(user, false).await {
                Ok(d) => targets.push((user.clone(), d)),
                Err(e) if new && user != &me.name => return Err(e),
                // A former member who is gone from the relay is skipped.
                Err(ClientError::Relay { code, .. }) if code == "NotFound" => {}
                Err(e) => return Err(e),
            }
        }
        let info = self
            .with_store(|s| s.accept_group_update(&me.name, &u))
            .map_err(group_error)?;
        let sent_at = self.timestamp();
        let plaintext = self.stamp(Content::of(Body::GroupUpdate(u)));
        for (user, devices) in targets.iter().filter(|(_, d)| !d.is_empty()) {
            self.send_control(user, devices, &plaintext, sent_at)
                .await?;
        }
        Ok(info)
    }

    /// On the primary, after linking `device_id`: the state of every group this
    /// account is in, for the new device (it accepts them from its own primary).
    pub(super) async fn share_groups(&self, device_id: u32) -> Result<(), ClientError> {
        let me = self.address()?;
        let sent_at = self.timestamp();
        for g in self.groups()?.into_iter().filter(|g| g.is_member(&me.name)) {
            let plaintext = self.stamp(Content::of(Body::GroupUpdate(g.update())));
            self.send_control(&me.name, &[device_id], &plaintext, sent_at)
                .await?;
        }
        Ok(())
    }

    /// Send a text message to the group: stored in the group's chat and queued for
    /// every device of every member before this returns. Returns the message id.
    pub async fn send_group_text(&self, group_id: &[u8], text: &str) -> Result<i64, ClientError> {
        let sent_at = self.timestamp();
        let plaintext = self.stamp(Content::text(text, sent_at));
        self.send_group_stored(group_id, text.as_bytes(), None, &plaintext, sent_at)
            .await
    }

    /// Send a media message (already uploaded) to the group, like
    /// [`send_media`](Self::send_media) to one contact.
    pub async fn send_group_media(
        &self,
        group_id: &[u8],
        media: &MediaMessage,
    ) -> Result<i64, ClientError> {
        let (sent_at, plaintext, stored_media) = self.media_plaintext(media)?;
        self.send_group_stored(
            group_id,
            media.caption.as_bytes(),
            Some(&stored_media),
            &plaintext,
            sent_at,
        )
        .await
    }

    /// The devices to send to, per member (this device left out; a member gone from
    /// the relay gets nothing).
    async fn group_recipients(
        &self,
        g: &GroupInfo,
    ) -> Result<Vec<(String, Vec<u32>)>, ClientError> {
        let mut out = Vec::with_capacity(g.members.len());
        for m in &g.members {
            match self.verified_devices(m, false).await {
                Ok(d) => out.push((m.clone(), d)),
                Err(ClientError::Relay { code, .. }) if code == "NotFound" => {
                    out.push((m.clone(), Vec::new()))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn send_group_stored(
        &self,
        group_id: &[u8],
        body: &[u8],
        media: Option<&[u8]>,
        plaintext: &[u8],
        sent_at: u64,
    ) -> Result<i64, ClientError> {
        let me = self.address()?;
        let g = self
            .group(group_id)?
            .ok_or_else(|| ClientError::Group("unknown group".into()))?;
        if !g.is_member(&me.name) {
            return Err(ClientError::Group(
                "this account is not a member of the group".into(),
            ));
        }
        let recipients = self.group_recipients(&g).await?;
        let (stored, sends, _) = self
            .with_store(|s| {
                s.group_send(
                    group_id,
                    &me,
                    &recipients,
                    Some(body),
                    media,
                    plaintext,
                    sent_at as i64,
                    &mut OsRng,
                )
            })
            .map_err(group_error)?;
        let message_id = stored.map(|m| m.id).ok_or_else(|| {
            ClientError::Store(crate::error::StoreError::Backend(
                "no message stored".into(),
            ))
        })?;
        let ids: Vec<i64> = sends.iter().map(|s| s.id).collect();
        for r in self.flush_sends(&ids).await {
            match r {
                // Not connected: what is left goes out with the outbox after a
                // reconnect. One member's refusal (gone, queue full) does not stop
                // the others (`Event::Failed` says which).
                Ok(())
                | Err(ClientError::NotConnected | ClientError::Transport(_))
                | Err(ClientError::Relay { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(message_id)
    }
}
