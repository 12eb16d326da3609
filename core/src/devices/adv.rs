//! How the primary device vouches for its companions (WhatsApp's "ADV" scheme,
//! `protocol-facts.md` §1.2-1.3), with domain-separated XEdDSA signatures:
//!
//! | signature | signer | message |
//! |---|---|---|
//! | account | primary identity | `06 00 ‖ details ‖ companion identity (32 B)` |
//! | device | companion identity | `06 01 ‖ details ‖ companion identity ‖ primary identity` |
//! | device list | primary identity | `06 02 ‖ list data` |
//!
//! `details` ([`DeviceIdentityDetails`]) names the account, the device id, the
//! companion's identity key, when it was linked and its key index; the signed device
//! list ([`DeviceListData`]) is versioned and timestamped and names the key indexes
//! that are valid. A peer keeps a companion only if both signatures verify against
//! the primary identity it trusts and its key index is in a list that verifies too.

use prost::Message as _;
use rand_core::{CryptoRng, RngCore};

use super::DeviceError;
use crate::keys::{IdentityKey, IdentityKeyPair, PublicKey};

/// Prefix of the account signature (primary over a companion).
pub const ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 0];
/// Prefix of the device signature (companion over its own details).
pub const DEVICE_SIGNATURE_PREFIX: [u8; 2] = [6, 1];
/// Prefix of the device-list signature (primary over the list).
pub const DEVICE_LIST_PREFIX: [u8; 2] = [6, 2];
/// The primary device's id (the one registered by phone number).
pub const PRIMARY_DEVICE: u32 = 1;

/// What the primary states about a companion ("linking metadata").
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceIdentityDetails {
    /// The account (E.164 number).
    #[prost(string, tag = "1")]
    pub user: String,
    /// The device id the companion gets.
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    /// When it was linked (ms since the epoch).
    #[prost(uint64, tag = "3")]
    pub timestamp_ms: u64,
    /// Its key index (names it in the signed device list).
    #[prost(uint32, tag = "4")]
    pub key_index: u32,
    /// Its identity key (33 bytes).
    #[prost(bytes = "vec", tag = "5")]
    pub identity_key: Vec<u8>,
}

/// A companion's identity, vouched for by the primary and counter-signed by itself.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignedDeviceIdentity {
    /// Encoded [`DeviceIdentityDetails`].
    #[prost(bytes = "vec", tag = "1")]
    pub details: Vec<u8>,
    /// The primary's identity key (33 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub account_signature_key: Vec<u8>,
    /// Primary over `06 00 ‖ details ‖ companion key`.
    #[prost(bytes = "vec", tag = "3")]
    pub account_signature: Vec<u8>,
    /// Companion over `06 01 ‖ details ‖ companion key ‖ primary key` (empty until the
    /// companion accepts).
    #[prost(bytes = "vec", tag = "4")]
    pub device_signature: Vec<u8>,
}

/// The signed device list's content.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceListData {
    /// The account.
    #[prost(string, tag = "1")]
    pub user: String,
    /// Strictly increasing with every change or renewal: an older list is a replay.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// When the primary signed it (ms); it expires a TTL later.
    #[prost(uint64, tag = "3")]
    pub timestamp_ms: u64,
    /// The highest key index handed out so far.
    #[prost(uint32, tag = "4")]
    pub current_index: u32,
    /// The key indexes of the companions that are linked now.
    #[prost(uint32, repeated, tag = "5")]
    pub valid_indexes: Vec<u32>,
}

/// A device list signed by the primary.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignedDeviceList {
    /// Encoded [`DeviceListData`].
    #[prost(bytes = "vec", tag = "1")]
    pub details: Vec<u8>,
    /// Primary over `06 02 ‖ details`.
    #[prost(bytes = "vec", tag = "2")]
    pub account_signature: Vec<u8>,
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn key_of(bytes: &[u8]) -> Result<IdentityKey, DeviceError> {
    IdentityKey::from_bytes(bytes).map_err(|_| DeviceError::Malformed("identity key"))
}

impl DeviceIdentityDetails {
    /// Parse (typed error on anything malformed).
    pub fn decode_from(bytes: &[u8]) -> Result<Self, DeviceError> {
        let d = Self::decode(bytes).map_err(|_| DeviceError::Malformed("device details"))?;
        key_of(&d.identity_key)?;
        if d.device_id == PRIMARY_DEVICE || d.device_id == 0 {
            return Err(DeviceError::Malformed("companion device id"));
        }
        Ok(d)
    }
}

impl SignedDeviceIdentity {
    /// The primary vouches for a companion (`details.identity_key`).
    pub fn sign_account<R: RngCore + CryptoRng>(
        primary: &IdentityKeyPair,
        details: &DeviceIdentityDetails,
        rng: &mut R,
    ) -> Result<Self, DeviceError> {
        let companion = key_of(&details.identity_key)?;
        let details = details.encode_to_vec();
        let msg = cat(&[
            &ACCOUNT_SIGNATURE_PREFIX,
            &details,
            companion.public_key().u_bytes(),
        ]);
        Ok(SignedDeviceIdentity {
            account_signature: primary.private_key().sign(&msg, rng).to_vec(),
            account_signature_key: primary.identity_key().serialize().to_vec(),
            details,
            device_signature: Vec::new(),
        })
    }

    /// Parse (typed error on anything malformed).
    pub fn decode_from(bytes: &[u8]) -> Result<Self, DeviceError> {
        let s = Self::decode(bytes).map_err(|_| DeviceError::Malformed("signed identity"))?;
        if s.account_signature.len() != 64 {
            return Err(DeviceError::Malformed("account signature"));
        }
        key_of(&s.account_signature_key)?;
        Ok(s)
    }

    /// The details (parsed).
    pub fn details(&self) -> Result<DeviceIdentityDetails, DeviceError> {
        DeviceIdentityDetails::decode_from(&self.details)
    }

    /// Check the account signature with the key it names: what the companion does
    /// before it accepts (it cannot know the primary's key otherwise; the link
    /// secret's MAC ties the offer to the QR code it showed).
    pub fn verify_account_signature(&self) -> Result<DeviceIdentityDetails, DeviceError> {
        let d = self.details()?;
        let primary = key_of(&self.account_signature_key)?;
        let companion = key_of(&d.identity_key)?;
        let msg = cat(&[
            &ACCOUNT_SIGNATURE_PREFIX,
            &self.details,
            companion.public_key().u_bytes(),
        ]);
        primary
            .public_key()
            .verify_signature(&msg, &self.account_signature)
            .map_err(|_| DeviceError::BadSignature("account"))?;
        Ok(d)
    }

    /// The companion counter-signs (after checking the account signature and that
    /// the details name its own identity).
    pub fn sign_device<R: RngCore + CryptoRng>(
        &mut self,
        companion: &IdentityKeyPair,
        rng: &mut R,
    ) -> Result<(), DeviceError> {
        let d = self.verify_account_signature()?;
        if d.identity_key != companion.identity_key().serialize() {
            return Err(DeviceError::NotForThisDevice);
        }
        let msg = self.device_message(companion.identity_key())?;
        self.device_signature = companion.private_key().sign(&msg, rng).to_vec();
        Ok(())
    }

    fn device_message(&self, companion: &IdentityKey) -> Result<Vec<u8>, DeviceError> {
        let primary = key_of(&self.account_signature_key)?;
        Ok(cat(&[
            &DEVICE_SIGNATURE_PREFIX,
            &self.details,
            companion.public_key().u_bytes(),
            primary.public_key().u_bytes(),
        ]))
    }

    /// What a peer checks before it encrypts to a companion: the primary it trusts
    /// signed it, the companion counter-signed it, and it names `user`,
    /// `device_id` and `identity` (the key in the device's prekey bundle).
    pub fn verify(
        &self,
        primary: &IdentityKey,
        user: &str,
        device_id: u32,
        identity: &IdentityKey,
    ) -> Result<DeviceIdentityDetails, DeviceError> {
        if !key_of(&self.account_signature_key)?
            .public_key()
            .ct_eq(primary.public_key())
        {
            return Err(DeviceError::BadSignature("account (another primary)"));
        }
        let d = self.verify_account_signature()?;
        if d.user != user || d.device_id != device_id {
            return Err(DeviceError::NotForThisDevice);
        }
        if d.identity_key != identity.serialize() {
            return Err(DeviceError::IdentityMismatch);
        }
        let msg = self.device_message(identity)?;
        identity
            .public_key()
            .verify_signature(&msg, &self.device_signature)
            .map_err(|_| DeviceError::BadSignature("device"))?;
        Ok(d)
    }
}

impl DeviceListData {
    /// Parse (typed error on anything malformed).
    pub fn decode_from(bytes: &[u8]) -> Result<Self, DeviceError> {
        Self::decode(bytes).map_err(|_| DeviceError::Malformed("device list"))
    }

    /// Whether a companion with `key_index` is on the list.
    pub fn contains(&self, key_index: u32) -> bool {
        self.valid_indexes.contains(&key_index)
    }
}

impl SignedDeviceList {
    /// The primary signs `data`.
    pub fn sign<R: RngCore + CryptoRng>(
        primary: &IdentityKeyPair,
        data: &DeviceListData,
        rng: &mut R,
    ) -> Self {
        let details = data.encode_to_vec();
        let sig = primary
            .private_key()
            .sign(&cat(&[&DEVICE_LIST_PREFIX, &details]), rng);
        SignedDeviceList {
            details,
            account_signature: sig.to_vec(),
        }
    }

    /// Parse (typed error on anything malformed).
    pub fn decode_from(bytes: &[u8]) -> Result<Self, DeviceError> {
        Self::decode(bytes).map_err(|_| DeviceError::Malformed("signed device list"))
    }

    /// Encode.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Verify the signature with `primary` and that it is `user`'s list.
    pub fn verify(&self, primary: &PublicKey, user: &str) -> Result<DeviceListData, DeviceError> {
        primary
            .verify_signature(
                &cat(&[&DEVICE_LIST_PREFIX, &self.details]),
                &self.account_signature,
            )
            .map_err(|_| DeviceError::BadSignature("device list"))?;
        let d = DeviceListData::decode_from(&self.details)?;
        if d.user != user {
            return Err(DeviceError::NotForThisDevice);
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_core::OsRng;

    fn details(companion: &IdentityKeyPair) -> DeviceIdentityDetails {
        DeviceIdentityDetails {
            user: "+491".into(),
            device_id: 2,
            timestamp_ms: 1000,
            key_index: 1,
            identity_key: companion.identity_key().serialize().to_vec(),
        }
    }

    #[test]
    fn both_signatures_verify_and_every_bit_flip_is_caught() {
        let primary = IdentityKeyPair::generate(&mut OsRng);
        let companion = IdentityKeyPair::generate(&mut OsRng);
        let mut s =
            SignedDeviceIdentity::sign_account(&primary, &details(&companion), &mut OsRng).unwrap();
        s.sign_device(&companion, &mut OsRng).unwrap();
        let pk = primary.identity_key();
        let ck = companion.identity_key();
        let d = s.verify(pk, "+491", 2, ck).unwrap();
        assert_eq!(d.key_index, 1);
        let bytes = s.encode_to_vec();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let ok = SignedDeviceIdentity::decode_from(&b)
                .and_then(|s| s.verify(pk, "+491", 2, ck))
                .is_ok();
            assert!(!ok, "bit {i} flipped and it still verified");
        }
        // Wrong address, wrong identity, another primary.
        assert_eq!(
            s.verify(pk, "+491", 3, ck),
            Err(DeviceError::NotForThisDevice)
        );
        let other = IdentityKeyPair::generate(&mut OsRng);
        assert_eq!(
            s.verify(pk, "+491", 2, other.identity_key()),
            Err(DeviceError::IdentityMismatch)
        );
        assert!(s.verify(other.identity_key(), "+491", 2, ck).is_err());
    }

    #[test]
    fn a_companion_refuses_details_for_another_key_and_prefixes_separate_domains() {
        let primary = IdentityKeyPair::generate(&mut OsRng);
        let companion = IdentityKeyPair::generate(&mut OsRng);
        let intruder = IdentityKeyPair::generate(&mut OsRng);
        let mut s =
            SignedDeviceIdentity::sign_account(&primary, &details(&companion), &mut OsRng).unwrap();
        assert_eq!(
            s.sign_device(&intruder, &mut OsRng),
            Err(DeviceError::NotForThisDevice)
        );
        // The account signature cannot pass as a device-list signature.
        let forged = SignedDeviceList {
            details: s.details.clone(),
            account_signature: s.account_signature.clone(),
        };
        assert!(forged
            .verify(primary.identity_key().public_key(), "+491")
            .is_err());
        // Unsigned by the companion: refused.
        assert!(s
            .verify(primary.identity_key(), "+491", 2, companion.identity_key())
            .is_err());
    }

    #[test]
    fn device_list_verifies_for_its_user_only() {
        let primary = IdentityKeyPair::generate(&mut OsRng);
        let data = DeviceListData {
            user: "+491".into(),
            version: 3,
            timestamp_ms: 5,
            current_index: 2,
            valid_indexes: vec![1, 2],
        };
        let l = SignedDeviceList::sign(&primary, &data, &mut OsRng);
        let pk = primary.identity_key().public_key();
        assert_eq!(l.verify(pk, "+491").unwrap(), data);
        assert_eq!(l.verify(pk, "+492"), Err(DeviceError::NotForThisDevice));
        let mut bad = l.clone();
        bad.details[3] ^= 1;
        assert!(bad.verify(pk, "+491").is_err());
        assert!(SignedDeviceList::decode_from(&[0xff, 0xff]).is_err());
    }
}
