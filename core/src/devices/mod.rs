//! Multi-device, sans-I/O: companions vouched for by the primary ([`adv`]), linking by
//! QR code ([`link`]), and what a peer checks before it encrypts to a user's devices
//! ([`verify_devices`]).
//!
//! Every device of an account has its own identity key. Device 1 is the primary (it
//! registered the phone number); companions get ids from 2 up when the primary links
//! them. A peer encrypts to a companion only if the primary it trusts signed the
//! companion's identity, the companion counter-signed it, and the companion's key index
//! is on a device list the same primary signed, that is not older than one seen
//! before and not expired. The relay's own list of devices decides nothing.
//!
//! ```
//! use pawl_core::devices::adv::{DeviceIdentityDetails, DeviceListData, PRIMARY_DEVICE};
//! use pawl_core::devices::link::{CompanionLink, LinkInvite};
//! use pawl_core::devices::{verify_devices, ListPolicy, DeviceEntry};
//! use pawl_core::IdentityKeyPair;
//! use rand_core::OsRng;
//!
//! let phone = IdentityKeyPair::generate(&mut OsRng);
//! let desktop = IdentityKeyPair::generate(&mut OsRng);
//! // The desktop shows a code (the relay gave it the ref).
//! let link = CompanionLink::new(vec![9; 16], desktop.identity_key(), '7', &mut OsRng);
//! let code = link.invite().to_code();
//! // The phone scans it and vouches for the desktop as device 2.
//! let invite = LinkInvite::parse(&code)?;
//! let details = DeviceIdentityDetails {
//!     user: "+4915100000001".into(), device_id: 2, timestamp_ms: 1_000, key_index: 1,
//!     identity_key: invite.identity.serialize().to_vec(),
//! };
//! let list = DeviceListData {
//!     user: "+4915100000001".into(), version: 1, timestamp_ms: 1_000,
//!     current_index: 1, valid_indexes: vec![1],
//! };
//! let offer = invite.offer(&phone, &details, &list, &mut OsRng)?;
//! // The desktop checks the offer and counter-signs.
//! let accepted = link.accept(&offer, &desktop, &mut OsRng)?;
//! // A contact checks the devices before it encrypts to them.
//! let signed = prost::Message::encode_to_vec(&accepted.identity);
//! let v = verify_devices(
//!     "+4915100000001", phone.identity_key(), Some(&accepted.device_list.to_bytes()),
//!     &[DeviceEntry { device_id: 1, signed_identity: &[] },
//!       DeviceEntry { device_id: 2, signed_identity: &signed }],
//!     &ListPolicy { known_version: None, now_ms: 2_000, ttl_ms: 35 * 86_400_000 },
//! )?;
//! assert_eq!(v.devices.iter().map(|d| d.0).collect::<Vec<_>>(), vec![PRIMARY_DEVICE, 2]);
//! # Ok::<(), pawl_core::devices::DeviceError>(())
//! ```

pub mod adv;
pub mod link;

use crate::keys::IdentityKey;
use adv::{SignedDeviceIdentity, SignedDeviceList, PRIMARY_DEVICE};

/// How long a signed device list is trusted (WhatsApp: 35 days or less).
pub const DEVICE_LIST_TTL_MS: u64 = 35 * 24 * 3600 * 1000;
/// How soon a cached list is refreshed once a message names a newer one
/// (WhatsApp's in-chat device consistency: 48 hours or less).
pub const NEWER_LIST_TTL_MS: u64 = 48 * 3600 * 1000;

/// Multi-device errors. All of them mean "do not trust this": nothing is encrypted to
/// a device that fails a check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// Bytes that do not parse, or a field out of range.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A signature does not verify.
    #[error("{0} signature does not verify")]
    BadSignature(&'static str),
    /// It names another account, device or identity than the one checked.
    #[error("signed for another device or account")]
    NotForThisDevice,
    /// The device's identity key differs from the one the primary vouched for.
    #[error("the device's identity key is not the one the primary signed")]
    IdentityMismatch,
    /// The link offer's MAC does not verify (not an answer to this code).
    #[error("the link offer does not answer this code (MAC)")]
    BadLinkMac,
    /// The scanned text is not a valid link code.
    #[error("not a valid link code ({0})")]
    BadLinkCode(&'static str),
    /// The device is not on the signed device list.
    #[error("device {0} is not on the signed device list")]
    NotOnList(u32),
    /// A device list older than one already seen (a replay).
    #[error("device list version {got} is older than version {seen} already seen")]
    ReplayedList {
        /// The newest version seen before.
        seen: u64,
        /// The version offered now.
        got: u64,
    },
    /// The link code expired, or the link was refused.
    #[error("link {0}")]
    Link(String),
}

/// One device the relay lists, with the signed identity it keeps for it.
#[derive(Clone, Copy, Debug)]
pub struct DeviceEntry<'a> {
    /// Device id.
    pub device_id: u32,
    /// Its [`SignedDeviceIdentity`] (empty for the primary).
    pub signed_identity: &'a [u8],
}

/// What a device list is checked against.
#[derive(Clone, Copy, Debug)]
pub struct ListPolicy {
    /// The newest version of this user's list seen before, if any.
    pub known_version: Option<u64>,
    /// Now (ms since the epoch).
    pub now_ms: u64,
    /// How long a list is trusted after it was signed.
    pub ttl_ms: u64,
}

/// The devices that passed, and why the others did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDevices {
    /// Version of the list that verified (0: there is none).
    pub version: u64,
    /// When the list was signed (ms).
    pub timestamp_ms: u64,
    /// The list is older than the TTL: only the primary is trusted until a newer one.
    pub expired: bool,
    /// The devices to encrypt to, ascending, with the identity each must have (the
    /// primary's is the trusted one; a companion's is the one the primary signed).
    pub devices: Vec<(u32, IdentityKey)>,
    /// Listed by the relay but refused.
    pub rejected: Vec<(u32, DeviceError)>,
}

/// Check `user`'s devices as the relay lists them against `primary` (the identity of
/// device 1 that this device trusts) and the signed device list. A list older than
/// `policy.known_version` is an error (a replayed list can bring back a removed
/// device); a missing or expired list leaves the primary only.
pub fn verify_devices(
    user: &str,
    primary: &IdentityKey,
    signed_list: Option<&[u8]>,
    listed: &[DeviceEntry<'_>],
    policy: &ListPolicy,
) -> Result<VerifiedDevices, DeviceError> {
    let list = match signed_list.filter(|b| !b.is_empty()) {
        Some(b) => Some(SignedDeviceList::decode_from(b)?.verify(primary.public_key(), user)?),
        None => None,
    };
    if let (Some(l), Some(seen)) = (&list, policy.known_version) {
        if l.version < seen {
            return Err(DeviceError::ReplayedList {
                seen,
                got: l.version,
            });
        }
    }
    let expired = list
        .as_ref()
        .is_some_and(|l| l.timestamp_ms.saturating_add(policy.ttl_ms) < policy.now_ms);
    let mut out = VerifiedDevices {
        version: list.as_ref().map_or(0, |l| l.version),
        timestamp_ms: list.as_ref().map_or(0, |l| l.timestamp_ms),
        expired,
        devices: Vec::new(),
        rejected: Vec::new(),
    };
    let mut ids: Vec<&DeviceEntry<'_>> = listed.iter().collect();
    ids.sort_by_key(|e| e.device_id);
    ids.dedup_by_key(|e| e.device_id);
    for e in ids {
        if e.device_id == PRIMARY_DEVICE {
            out.devices.push((PRIMARY_DEVICE, *primary));
            continue;
        }
        let checked = (|| {
            let list = match &list {
                Some(l) if !expired => l,
                _ => return Err(DeviceError::NotOnList(e.device_id)),
            };
            let s = SignedDeviceIdentity::decode_from(e.signed_identity)?;
            let d = s.details()?;
            let identity = IdentityKey::from_bytes(&d.identity_key)
                .map_err(|_| DeviceError::Malformed("identity key"))?;
            s.verify(primary, user, e.device_id, &identity)?;
            if !list.contains(d.key_index) {
                return Err(DeviceError::NotOnList(e.device_id));
            }
            Ok(identity)
        })();
        match checked {
            Ok(identity) => out.devices.push((e.device_id, identity)),
            Err(err) => out.rejected.push((e.device_id, err)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::adv::{DeviceIdentityDetails, DeviceListData};
    use super::*;
    use crate::IdentityKeyPair;
    use prost::Message as _;
    use rand_core::OsRng;

    struct Account {
        primary: IdentityKeyPair,
        companions: Vec<(u32, Vec<u8>)>,
    }

    fn account(n: u32) -> Account {
        let primary = IdentityKeyPair::generate(&mut OsRng);
        let companions = (0..n)
            .map(|i| {
                let c = IdentityKeyPair::generate(&mut OsRng);
                let d = DeviceIdentityDetails {
                    user: "+491".into(),
                    device_id: i + 2,
                    timestamp_ms: 1,
                    key_index: i + 1,
                    identity_key: c.identity_key().serialize().to_vec(),
                };
                let mut s = SignedDeviceIdentity::sign_account(&primary, &d, &mut OsRng).unwrap();
                s.sign_device(&c, &mut OsRng).unwrap();
                (i + 2, s.encode_to_vec())
            })
            .collect();
        Account {
            primary,
            companions,
        }
    }

    fn list(a: &Account, version: u64, ts: u64, valid: Vec<u32>) -> Vec<u8> {
        let data = DeviceListData {
            user: "+491".into(),
            version,
            timestamp_ms: ts,
            current_index: 9,
            valid_indexes: valid,
        };
        SignedDeviceList::sign(&a.primary, &data, &mut OsRng).to_bytes()
    }

    fn entries(a: &Account) -> Vec<DeviceEntry<'_>> {
        let mut v = vec![DeviceEntry {
            device_id: 1,
            signed_identity: &[],
        }];
        v.extend(a.companions.iter().map(|(d, s)| DeviceEntry {
            device_id: *d,
            signed_identity: s,
        }));
        v
    }

    const DAY: u64 = 86_400_000;

    fn policy(known: Option<u64>, now: u64) -> ListPolicy {
        ListPolicy {
            known_version: known,
            now_ms: now,
            ttl_ms: DEVICE_LIST_TTL_MS,
        }
    }

    fn ids(v: &VerifiedDevices) -> Vec<u32> {
        v.devices.iter().map(|d| d.0).collect()
    }

    #[test]
    fn listed_companions_pass_and_removed_ones_do_not() {
        let a = account(2);
        let pk = a.primary.identity_key();
        let l = list(&a, 2, DAY, vec![1, 2]);
        let v = verify_devices("+491", pk, Some(&l), &entries(&a), &policy(None, DAY)).unwrap();
        assert_eq!(ids(&v), vec![1, 2, 3]);
        // Key index 2 (device 3) removed from the list.
        let l = list(&a, 3, DAY, vec![1]);
        let v = verify_devices("+491", pk, Some(&l), &entries(&a), &policy(Some(2), DAY)).unwrap();
        assert_eq!(ids(&v), vec![1, 2]);
        assert_eq!(v.rejected, vec![(3, DeviceError::NotOnList(3))]);
    }

    #[test]
    fn an_injected_device_gets_nothing() {
        let a = account(1);
        let pk = a.primary.identity_key();
        let l = list(&a, 1, DAY, vec![1, 2, 3]);
        // The relay lists a device 5 it made up (signed by a key of its own).
        let intruder = account(1);
        let mut e = entries(&a);
        e.push(DeviceEntry {
            device_id: 5,
            signed_identity: &intruder.companions[0].1,
        });
        e.push(DeviceEntry {
            device_id: 6,
            signed_identity: &[1, 2, 3],
        });
        // And it moves a real device's identity to another id.
        e.push(DeviceEntry {
            device_id: 7,
            signed_identity: &a.companions[0].1,
        });
        let v = verify_devices("+491", pk, Some(&l), &e, &policy(None, DAY)).unwrap();
        assert_eq!(ids(&v), vec![1, 2]);
        assert_eq!(
            v.rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![5, 6, 7]
        );
    }

    #[test]
    fn replayed_expired_missing_and_foreign_lists() {
        let a = account(1);
        let pk = a.primary.identity_key();
        let old = list(&a, 1, DAY, vec![1]);
        assert_eq!(
            verify_devices("+491", pk, Some(&old), &entries(&a), &policy(Some(2), DAY)),
            Err(DeviceError::ReplayedList { seen: 2, got: 1 })
        );
        let v = verify_devices(
            "+491",
            pk,
            Some(&old),
            &entries(&a),
            &policy(None, 40 * DAY),
        )
        .unwrap();
        assert!(v.expired);
        assert_eq!(ids(&v), vec![1]);
        let v = verify_devices("+491", pk, None, &entries(&a), &policy(None, DAY)).unwrap();
        assert_eq!(ids(&v), vec![1]);
        let other = account(0);
        let foreign = list(&other, 9, DAY, vec![1]);
        assert!(
            verify_devices("+491", pk, Some(&foreign), &entries(&a), &policy(None, DAY)).is_err()
        );
        assert!(verify_devices(
            "+491",
            pk,
            Some(&[7, 7, 7]),
            &entries(&a),
            &policy(None, DAY)
        )
        .is_err());
    }
}
