//! Groups for apps: create, change and leave groups, send to them. Membership changes
//! travel pairwise-encrypted and are accepted only from an admin; messages are
//! sender-key encrypted once for every device of every member (see
//! `pawl_core::client` groups).

use std::future::Future;

use pawl_core::client::{Client, ClientError};

use crate::client::PawlClient;
use crate::error::PawlError;
use crate::types::MediaMessage;
use crate::{guard, run};

/// A group as this device knows it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupInfo {
    /// The group's id (16 bytes).
    pub id: Vec<u8>,
    /// Its chat's id.
    pub chat_id: i64,
    /// Its chat's peer name (`group:` + hex id): pass it to `messages`.
    pub peer: String,
    /// Its name (also the chat's title).
    pub name: String,
    /// Version of the current state (1 at creation).
    pub version: u64,
    /// Members (user names, sorted).
    pub members: Vec<String>,
    /// Admins: members who may change membership and name.
    pub admins: Vec<String>,
    /// Whether this account is still a member.
    pub is_member: bool,
}

impl GroupInfo {
    fn of(g: pawl_core::client::GroupInfo, me: &str) -> Self {
        GroupInfo {
            is_member: g.is_member(me),
            peer: g.chat_peer(),
            id: g.id,
            chat_id: g.chat_id,
            name: g.name,
            version: g.version,
            members: g.members,
            admins: g.admins,
        }
    }
}

impl PawlClient {
    /// Run a change of a group on the core client (in the runtime) and describe the
    /// group as it leaves it.
    async fn change_group<F, Fut>(&self, change: F) -> Result<GroupInfo, PawlError>
    where
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<pawl_core::client::GroupInfo, ClientError>> + Send,
    {
        let c = self.client.clone();
        run(async move {
            let g = change(c.clone()).await?;
            Ok(GroupInfo::of(g, &c.address()?.name))
        })
        .await
    }
}

fn names(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[uniffi::export]
impl PawlClient {
    /// Create a group with these members (this account is added as its admin).
    pub async fn create_group(
        &self,
        name: String,
        members: Vec<String>,
    ) -> Result<GroupInfo, PawlError> {
        self.change_group(move |c| async move { c.create_group(&name, &names(&members)).await })
            .await
    }

    /// Add members (admins only; otherwise `InvalidArgument`).
    pub async fn add_group_members(
        &self,
        group_id: Vec<u8>,
        users: Vec<String>,
    ) -> Result<GroupInfo, PawlError> {
        self.change_group(
            move |c| async move { c.add_group_members(&group_id, &names(&users)).await },
        )
        .await
    }

    /// Remove members (admins only): they get nothing sent afterwards.
    pub async fn remove_group_members(
        &self,
        group_id: Vec<u8>,
        users: Vec<String>,
    ) -> Result<GroupInfo, PawlError> {
        self.change_group(move |c| async move {
            c.remove_group_members(&group_id, &names(&users)).await
        })
        .await
    }

    /// Rename the group (admins only).
    pub async fn rename_group(
        &self,
        group_id: Vec<u8>,
        name: String,
    ) -> Result<GroupInfo, PawlError> {
        self.change_group(move |c| async move { c.rename_group(&group_id, &name).await })
            .await
    }

    /// Leave the group.
    pub async fn leave_group(&self, group_id: Vec<u8>) -> Result<GroupInfo, PawlError> {
        self.change_group(move |c| async move { c.leave_group(&group_id).await })
            .await
    }

    /// Send a text to every device of every member; returns the message id (stored in
    /// the group's chat before this returns).
    pub async fn send_group_text(&self, group_id: Vec<u8>, text: String) -> Result<i64, PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.send_group_text(&group_id, &text).await?) }).await
    }

    /// Send a media message (its attachment uploaded first) to the group.
    pub async fn send_group_media(
        &self,
        group_id: Vec<u8>,
        media: MediaMessage,
    ) -> Result<i64, PawlError> {
        let c = self.client.clone();
        run(async move {
            let m = media.to_core()?;
            Ok(c.send_group_media(&group_id, &m).await?)
        })
        .await
    }

    /// The groups this device knows (also those it left or was removed from).
    pub fn groups(&self) -> Result<Vec<GroupInfo>, PawlError> {
        guard(|| {
            let me = self.client.address()?.name;
            Ok(self
                .client
                .groups()?
                .into_iter()
                .map(|g| GroupInfo::of(g, &me))
                .collect())
        })
    }

    /// One group by id.
    pub fn group(&self, group_id: Vec<u8>) -> Result<Option<GroupInfo>, PawlError> {
        guard(|| {
            let me = self.client.address()?.name;
            Ok(self.client.group(&group_id)?.map(|g| GroupInfo::of(g, &me)))
        })
    }
}
