//! Groups in the store: membership (from authenticated updates), group chats, which
//! member devices hold this device's sender key, and the atomic group send (one
//! sender-key encryption, the key for the devices that lack it, the message and the
//! outbox entries in one transaction).
//!
//! ```
//! use pawl_core::sqlite::SqliteStore;
//! use pawl_core::wire::content::GroupUpdate;
//!
//! let path = std::env::temp_dir().join(format!("pawl-groups-doc-{}.db", std::process::id()));
//! # let _ = std::fs::remove_file(&path);
//! let mut store = SqliteStore::open(&path, Some(&[7u8; 32]))?;
//! let update = GroupUpdate {
//!     group_id: vec![7; 16],
//!     version: 1,
//!     name: "Climbing".into(),
//!     members: vec!["+491511".into(), "+491512".into()],
//!     admins: vec!["+491511".into()],
//! };
//! // Received from +491511 (an admin of the new state): accepted.
//! let g = store.accept_group_update("+491511", &update)?;
//! assert_eq!(g.name, "Climbing");
//! // The same version again (a replay) is refused; so is a change by a non-admin.
//! assert!(store.accept_group_update("+491511", &update).is_err());
//! let mut rename = update.clone();
//! rename.version = 2;
//! rename.name = "Bouldering".into();
//! assert!(store.accept_group_update("+491512", &rename).is_err());
//! # drop(store);
//! # let _ = std::fs::remove_file(&path);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use rand_core::{CryptoRng, RngCore};
use rusqlite::{params, OptionalExtension};

use super::messages::{MessageStatus, PendingSend, StoredMessage};
use super::{sql_err, SqliteStore, ACCOUNT_USER};
use crate::address::ProtocolAddress;
use crate::error::{SessionError, StoreError};
use crate::store::SenderKeyStore;
use crate::wire::content::{
    Body, Content, GroupEnvelope, GroupUpdate, SenderKeyShare, GROUP_ID_LEN, GROUP_MESSAGE_TYPE,
};
use crate::wire::{SenderKeyDistributionMessage, SenderKeyMessage};

/// Most members a group may have.
pub const MAX_GROUP_MEMBERS: usize = 1024;
/// Longest group name, in characters.
pub const MAX_GROUP_NAME: usize = 100;

/// A group as this device knows it (the newest accepted update).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// 16 bytes.
    pub id: Vec<u8>,
    /// Its chat (messages are stored there).
    pub chat_id: i64,
    /// Name (also the chat's title).
    pub name: String,
    /// Version of the accepted update.
    pub version: u64,
    /// Members, sorted.
    pub members: Vec<String>,
    /// Admins (members who may change membership and name), sorted.
    pub admins: Vec<String>,
}

impl GroupInfo {
    /// Whether `user` is a member.
    pub fn is_member(&self, user: &str) -> bool {
        self.members.iter().any(|m| m == user)
    }

    /// Whether `user` is an admin.
    pub fn is_admin(&self, user: &str) -> bool {
        self.admins.iter().any(|m| m == user)
    }

    /// The `peer` of its chat (for `chat_id`, `latest_messages` by peer, `mark_read`).
    pub fn chat_peer(&self) -> String {
        group_chat_peer(&self.id)
    }

    /// This state as an update message.
    pub fn update(&self) -> GroupUpdate {
        GroupUpdate {
            group_id: self.id.clone(),
            version: self.version,
            name: self.name.clone(),
            members: self.members.clone(),
            admins: self.admins.clone(),
        }
    }
}

/// The `peer` of a group's chat: `group:` and the id in hex.
pub fn group_chat_peer(id: &[u8]) -> String {
    let mut s = String::with_capacity(6 + 2 * id.len());
    s.push_str("group:");
    for b in id {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Check an update on its own (sizes, sets); the reason if it is malformed.
pub fn check_group_update(u: &GroupUpdate) -> Result<(), String> {
    if u.group_id.len() != GROUP_ID_LEN {
        return Err(format!("a group id has {GROUP_ID_LEN} bytes"));
    }
    if u.version == 0 {
        return Err("versions start at 1".into());
    }
    if u.name.trim().is_empty() || u.name.chars().count() > MAX_GROUP_NAME {
        return Err(format!("a group name has 1 to {MAX_GROUP_NAME} characters"));
    }
    if u.members.len() > MAX_GROUP_MEMBERS {
        return Err(format!("more than {MAX_GROUP_MEMBERS} members"));
    }
    for list in [&u.members, &u.admins] {
        let mut sorted: Vec<&String> = list.iter().collect();
        sorted.sort();
        if sorted.windows(2).any(|w| w[0] == w[1]) || list.iter().any(|m| m.is_empty()) {
            return Err("members and admins are distinct, non-empty names".into());
        }
    }
    if u.admins.iter().any(|a| !u.members.contains(a)) {
        return Err("every admin is a member".into());
    }
    Ok(())
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn refused(why: impl std::fmt::Display) -> SessionError {
    SessionError::InvalidMessage(format!("group update refused: {why}"))
}

impl SqliteStore {
    /// A group by id.
    pub fn group(&self, id: &[u8]) -> Result<Option<GroupInfo>, StoreError> {
        let head: Option<(i64, String, i64)> = self
            .conn
            .prepare_cached("SELECT chat_id, name, version FROM groups WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(sql_err)?;
        let Some((chat_id, name, version)) = head else {
            return Ok(None);
        };
        let rows: Vec<(String, bool)> = self
            .conn
            .prepare_cached(
                "SELECT name, admin FROM group_members WHERE group_id = ?1 ORDER BY name",
            )
            .and_then(|mut s| s.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(sql_err)?;
        Ok(Some(GroupInfo {
            id: id.to_vec(),
            chat_id,
            name,
            version: version as u64,
            admins: rows.iter().filter(|r| r.1).map(|r| r.0.clone()).collect(),
            members: rows.into_iter().map(|r| r.0).collect(),
        }))
    }

    /// Every group this device knows (also those it was removed from), by chat id.
    pub fn groups(&self) -> Result<Vec<GroupInfo>, StoreError> {
        let ids: Vec<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT id FROM groups ORDER BY chat_id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql_err)?;
        ids.iter()
            .filter_map(|id| self.group(id).transpose())
            .collect()
    }

    /// The group whose chat this is, if it is a group chat.
    pub fn group_of_chat(&self, chat_id: i64) -> Result<Option<GroupInfo>, StoreError> {
        let id: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT id FROM groups WHERE chat_id = ?1")
            .and_then(|mut s| s.query_row([chat_id], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        match id {
            Some(id) => self.group(&id),
            None => Ok(None),
        }
    }

    /// Apply a group update sent by `from` (a user whose device's pairwise message
    /// carried it), if the rules allow it: a new group from one of its admins; a
    /// change with a higher version from an admin of the current state, or a member
    /// leaving (only themselves removed, nothing else changed). Anything else (a
    /// replayed or older version, a non-admin's change, a malformed update) is refused
    /// with [`SessionError::InvalidMessage`] and changes nothing.
    pub fn accept_group_update(
        &mut self,
        from: &str,
        u: &GroupUpdate,
    ) -> Result<GroupInfo, SessionError> {
        check_group_update(u).map_err(refused)?;
        match self.group(&u.group_id)? {
            None if u.admins.iter().any(|a| a == from) => {}
            None => return Err(refused(format!("{from} is not an admin of the new group"))),
            Some(g) if u.version <= g.version => {
                return Err(refused(format!(
                    "version {} is not newer than {}",
                    u.version, g.version
                )))
            }
            Some(g) if g.is_admin(from) => {}
            Some(g) => {
                let without = |v: &[String]| -> Vec<String> {
                    v.iter().filter(|m| *m != from).cloned().collect()
                };
                let leaving = g.is_member(from)
                    && !u.members.iter().any(|m| m == from)
                    && sorted(&u.members) == without(&g.members)
                    && sorted(&u.admins) == without(&g.admins)
                    && u.name == g.name;
                if !leaving {
                    return Err(refused(format!("{from} is not an admin")));
                }
            }
        }
        self.transaction(|s| s.write_group(u))
    }

    /// A group's state from this account's own primary device, for a newly linked
    /// device: taken if the group is unknown here or the version is newer, whoever
    /// the admins are (the primary is trusted with the account's groups). A version
    /// this device already has (the admin's own update got here first) changes
    /// nothing and is not an error.
    pub fn accept_group_sync(&mut self, u: &GroupUpdate) -> Result<GroupInfo, SessionError> {
        check_group_update(u).map_err(refused)?;
        if let Some(g) = self.group(&u.group_id)? {
            if u.version <= g.version {
                return Ok(g);
            }
        }
        self.transaction(|s| s.write_group(u))
    }

    /// Store `u` as the group's state (checked by the caller).
    pub(crate) fn write_group(&mut self, u: &GroupUpdate) -> Result<GroupInfo, SessionError> {
        let chat = self.chat_id(&group_chat_peer(&u.group_id))?;
        let c = &self.conn;
        c.execute(
            "INSERT INTO groups (id, chat_id, name, version) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version",
            params![u.group_id, chat, u.name, u.version as i64],
        )
        .map_err(sql_err)?;
        c.execute(
            "UPDATE chats SET title = ?2 WHERE id = ?1",
            params![chat, u.name],
        )
        .map_err(sql_err)?;
        c.execute(
            "DELETE FROM group_members WHERE group_id = ?1",
            [&u.group_id],
        )
        .map_err(sql_err)?;
        for m in &u.members {
            c.execute(
                "INSERT INTO group_members (group_id, name, admin) VALUES (?1, ?2, ?3)",
                params![u.group_id, m, u.admins.contains(m)],
            )
            .map_err(sql_err)?;
        }
        Ok(self
            .group(&u.group_id)?
            .ok_or_else(|| StoreError::Backend("group vanished".into()))?)
    }

    /// The member devices given this device's sender key for a group: (user, device,
    /// chain id).
    pub fn group_key_holders(
        &self,
        group_id: &[u8],
    ) -> Result<Vec<(String, u32, u32)>, StoreError> {
        self.conn
            .prepare_cached("SELECT name, device_id, chain_id FROM group_key_holders WHERE group_id = ?1 ORDER BY name, device_id")
            .and_then(|mut s| {
                s.query_map([group_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(sql_err)
    }

    /// This device's sender-key chain for a group, if it has one.
    pub fn own_sender_chain(
        &mut self,
        me: &ProtocolAddress,
        group_id: &[u8],
    ) -> Result<Option<u32>, StoreError> {
        Ok(self
            .load_sender_key(me, group_id)?
            .and_then(|r| r.distribution_message().ok())
            .map(|m| m.chain_id))
    }

    /// Encrypt `plaintext` (an encoded [`Content`]) once with this device's sender key
    /// for the group and store the send, in one transaction: the message in the
    /// group's chat (when `body` is given), and per recipient user one pending send
    /// whose entries are group envelopes, one per device; a device that does not hold
    /// the current key gets it in its envelope, pairwise-encrypted (sessions with
    /// every device must exist). If a device that holds the key is no longer among
    /// `recipients` (a member or a device left), the key is rotated first, so it
    /// cannot read this or anything later. Returns the message, the sends, and
    /// whether the key was rotated.
    #[allow(clippy::too_many_arguments)]
    pub fn group_send<R: RngCore + CryptoRng>(
        &mut self,
        group_id: &[u8],
        me: &ProtocolAddress,
        recipients: &[(String, Vec<u32>)],
        body: Option<&[u8]>,
        media: Option<&[u8]>,
        plaintext: &[u8],
        sent_at: i64,
        rng: &mut R,
    ) -> Result<(Option<StoredMessage>, Vec<PendingSend>, bool), SessionError> {
        self.transaction(|s| {
            let g = s
                .group(group_id)?
                .ok_or_else(|| SessionError::InvalidArgument("unknown group".into()))?;
            if !g.is_member(&me.name) {
                return Err(SessionError::InvalidArgument(
                    "this account is not a member of the group".into(),
                ));
            }
            let mut record = s.load_sender_key(me, group_id)?.unwrap_or_default();
            let is_recipient = |user: &str, d: u32| {
                recipients
                    .iter()
                    .any(|(u, ds)| u == user && ds.contains(&d))
            };
            let gone = s
                .group_key_holders(group_id)?
                .iter()
                .any(|(u, d, _)| !is_recipient(u, *d));
            let rotated = gone || record.distribution_message().is_err();
            if rotated {
                record.rotate(rng);
                s.conn
                    .execute(
                        "DELETE FROM group_key_holders WHERE group_id = ?1",
                        [group_id],
                    )
                    .map_err(sql_err)?;
            }
            let distribution = record.distribution_message()?;
            let message = record.encrypt(plaintext, rng)?;
            s.store_sender_key(me, group_id, &record)?;
            let share = Content::of(Body::SenderKey(SenderKeyShare {
                group_id: group_id.to_vec(),
                distribution: distribution.serialized().to_vec(),
            }))
            .encode();
            let template = GroupEnvelope {
                group_id: group_id.to_vec(),
                message: message.serialized().to_vec(),
                key_type: 0,
                key: share,
            }
            .encode();
            let stored = match body {
                Some(body) => Some(s.insert_outgoing(g.chat_id, body, media, sent_at)?),
                None => None,
            };
            let mut sends = Vec::new();
            for (user, devices) in recipients.iter().filter(|(_, d)| !d.is_empty()) {
                let message_id = stored.as_ref().map(|m| m.id);
                let send_id = s.new_send(message_id, user, &template, sent_at, Some(group_id))?;
                s.encrypt_group_into_send(send_id, user, devices, &template, sent_at)?;
                sends.push(s.pending_send_of(send_id)?);
            }
            // Nobody else to send to (only this device in the group): nothing waits.
            let stored = match stored {
                Some(m) if sends.is_empty() => {
                    s.set_status(m.id, MessageStatus::Sent)?;
                    Some(StoredMessage {
                        status: MessageStatus::Sent,
                        ..m
                    })
                }
                m => m,
            };
            Ok((stored, sends, rotated))
        })
    }

    /// Add entries for `devices` of `user` to a group send, from its template: the
    /// sender-key message for all, and the key (pairwise) for those without it.
    pub(crate) fn encrypt_group_into_send(
        &mut self,
        send_id: i64,
        user: &str,
        devices: &[u32],
        template: &[u8],
        created_at: i64,
    ) -> Result<(), SessionError> {
        let t = GroupEnvelope::decode(template)?;
        let chain = SenderKeyMessage::parse(&t.message)?.chain_id;
        let message_id = self.send_message_id(send_id)?;
        for &d in devices {
            let holds: Option<u32> = self
                .conn
                .prepare_cached("SELECT chain_id FROM group_key_holders WHERE group_id = ?1 AND name = ?2 AND device_id = ?3")
                .and_then(|mut st| st.query_row(params![t.group_id, user, d], |r| r.get(0)).optional())
                .map_err(sql_err)?;
            let mut env = GroupEnvelope {
                group_id: t.group_id.clone(),
                message: t.message.clone(),
                key_type: 0,
                key: Vec::new(),
            };
            if holds != Some(chain) {
                let m = crate::message_encrypt(self, &ProtocolAddress::new(user, d), &t.key)?;
                env.key_type = u32::from(m.message_type());
                env.key = m.serialized().to_vec();
                self.conn
                    .prepare_cached("INSERT OR REPLACE INTO group_key_holders (group_id, name, device_id, chain_id) VALUES (?1, ?2, ?3, ?4)")
                    .and_then(|mut st| st.execute(params![t.group_id, user, d, chain]))
                    .map_err(sql_err)?;
            }
            self.insert_outbox(
                send_id,
                message_id,
                user,
                d,
                GROUP_MESSAGE_TYPE,
                &env.encode(),
                created_at,
            )?;
        }
        Ok(())
    }

    /// A group's chat and whether `user` is a member of it (`None`: an unknown group).
    /// One indexed look-up: what every received group message checks.
    fn membership(&self, group_id: &[u8], user: &str) -> Result<Option<(i64, bool)>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT g.chat_id, EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.name = ?2)
                 FROM groups g WHERE g.id = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![group_id, user], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(sql_err)
    }

    /// A received group envelope from `from`: the sender key it carries (if any) is
    /// taken in, then the message is verified and decrypted. Returns the group's chat
    /// and the plaintext. `pairwise` decrypts the key part with the batch's session.
    pub(crate) fn decrypt_group(
        &mut self,
        from: &ProtocolAddress,
        bytes: &[u8],
        pairwise: impl FnOnce(&mut Self, u8, &[u8]) -> Result<Vec<u8>, SessionError>,
    ) -> Result<(i64, Vec<u8>), SessionError> {
        let g = GroupEnvelope::decode(bytes)?;
        let (chat_id, member) = self
            .membership(&g.group_id, &from.name)?
            .ok_or_else(|| SessionError::InvalidMessage("a message for an unknown group".into()))?;
        if !member {
            return Err(SessionError::InvalidMessage(format!(
                "{} is not a member of the group",
                from.name
            )));
        }
        if g.key_type != 0 {
            let t = u8::try_from(g.key_type)
                .map_err(|_| SessionError::InvalidMessage("bad key type".into()))?;
            match pairwise(self, t, &g.key) {
                Ok(pt) => {
                    let share = match Content::decode(&pt)?.body {
                        Some(Body::SenderKey(k)) => k,
                        _ => {
                            return Err(SessionError::InvalidMessage(
                                "a group envelope's key part is not a sender key".into(),
                            ))
                        }
                    };
                    // The pairwise message names its group: the key goes there (if the
                    // sender is a member), whatever envelope it came in, since the
                    // pairwise message cannot be decrypted twice.
                    let target = self.membership(&share.group_id, &from.name)?;
                    if target.is_some_and(|(_, member)| member) {
                        let m = SenderKeyDistributionMessage::parse(&share.distribution)?;
                        crate::group::process_sender_key_distribution_message(
                            self,
                            from,
                            &share.group_id,
                            &m,
                        )?;
                    }
                    if share.group_id != g.group_id {
                        return Err(SessionError::InvalidMessage(
                            "the key in a group envelope is another group's".into(),
                        ));
                    }
                }
                // Taken in already (an earlier copy of this envelope): go on to the
                // message, which decrypts or fails on its own terms.
                Err(SessionError::DuplicateMessage { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let pt = crate::group::group_decrypt(self, from, &g.group_id, &g.message)?;
        Ok((chat_id, pt))
    }

    /// Whether `name` is this store's account (set by the client at registration).
    pub(crate) fn is_own_user(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.setting(ACCOUNT_USER)?.as_deref() == Some(name.as_bytes()))
    }

    /// A group send failed for good for `user`: its devices did not get the key.
    pub(crate) fn forget_group_holders(
        &mut self,
        group_id: &[u8],
        user: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM group_key_holders WHERE group_id = ?1 AND name = ?2",
                params![group_id, user],
            )
            .map(|_| ())
            .map_err(sql_err)
    }
}
