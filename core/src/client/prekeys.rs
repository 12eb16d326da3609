//! One-time prekeys: topped up when the relay runs low; bundles from the wire.

use rand_core::OsRng;

use super::*;
use crate::error::StoreError;
use crate::keys::{IdentityKey, PreKeyBundle, PreKeyRecord, PublicKey};
use crate::store::{PreKeyStore, SignedPreKeyStore};
use crate::wire::relay::{self as proto, ClientKind};

impl Client {
    /// Upload a signed prekey and a batch of one-time prekeys if the relay is low.
    pub(super) async fn top_up_prekeys(&self, left: u32) -> Result<(), ClientError> {
        let c = &self.inner.config;
        if left >= c.prekey_low_water {
            return Ok(());
        }
        let n = c.prekey_batch;
        let upload = self.new_prekeys(n)?;
        let r = self.request(ClientKind::UploadKeys(upload)).await?;
        if !r.ok {
            return Err(relay_error(&r));
        }
        self.emit(Event::PreKeysUploaded { count: n });
        Ok(())
    }

    /// `n` new one-time prekeys (stored) and the signed prekey, as an upload.
    pub(super) fn new_prekeys(&self, n: u32) -> Result<proto::UploadKeys, ClientError> {
        let (spk, records) = self.with_store(|s| {
            s.transaction(|s| {
                let first = match s.setting(NEXT_PREKEY_ID)? {
                    Some(v) if v.len() == 4 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                    _ => 1,
                };
                let mut records = Vec::with_capacity(n as usize);
                for i in 0..n {
                    // Prekey ids are 24-bit in libsignal; wrap, skipping 0.
                    let id = (first.wrapping_add(i) - 1) % 0xFF_FFFF + 1;
                    let r = PreKeyRecord::generate(id, &mut OsRng);
                    s.save_pre_key(&r)?;
                    records.push(r);
                }
                let next = (first.wrapping_add(n) - 1) % 0xFF_FFFF + 1;
                s.set_setting(NEXT_PREKEY_ID, &next.to_be_bytes())?;
                let spk = s
                    .get_signed_pre_key(SIGNED_PREKEY_ID)?
                    .ok_or_else(|| StoreError::Backend("no signed prekey".into()))?;
                Ok::<_, StoreError>((spk, records))
            })
        })?;
        Ok(proto::UploadKeys {
            signed_prekey_id: spk.id,
            signed_prekey: spk.key_pair.public.serialize().to_vec(),
            signed_prekey_signature: spk.signature.to_vec(),
            prekeys: records
                .iter()
                .map(|p| proto::PreKey {
                    id: p.id,
                    public_key: p.key_pair.public.serialize().to_vec(),
                })
                .collect(),
        })
    }
}

pub(super) fn bundle_from_wire(b: &proto::Bundle) -> Result<PreKeyBundle, ClientError> {
    let bad = |what: &str| ClientError::Protocol(format!("bundle: bad {what}"));
    Ok(PreKeyBundle {
        registration_id: b.registration_id,
        device_id: b.device_id,
        prekey: match &b.prekey {
            Some(p) => Some((
                p.id,
                PublicKey::from_bytes(&p.public_key).map_err(|_| bad("prekey"))?,
            )),
            None => None,
        },
        signed_prekey_id: b.signed_prekey_id,
        signed_prekey: PublicKey::from_bytes(&b.signed_prekey).map_err(|_| bad("signed prekey"))?,
        signed_prekey_signature: b.signed_prekey_signature.clone(),
        identity_key: IdentityKey::from_bytes(&b.identity_key).map_err(|_| bad("identity key"))?,
    })
}
