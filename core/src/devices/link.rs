//! Linking a companion by QR code (`protocol-facts.md` §1.4).
//!
//! The companion shows a [`LinkInvite`] as a QR code:
//!
//! ```text
//! pawl-link:1,<ref>,<identity>,<ephemeral>,<link secret>,<platform>
//! ```
//!
//! (base64url without padding; `ref` is the relay's pairing reference, the keys are the
//! 32-byte Curve25519 u-coordinates). The link secret never reaches the relay. The
//! primary answers with a [`LinkOffer`]: the companion's identity signed by the
//! primary (account signature), the new signed device list, the primary's ephemeral
//! key, and a MAC over both under a key derived from the link secret and the two
//! ephemeral keys. The companion checks the MAC and every signature before it
//! counter-signs ([`CompanionLink::accept`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use prost::Message as _;
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::adv::{DeviceIdentityDetails, DeviceListData, SignedDeviceIdentity, SignedDeviceList};
use super::DeviceError;
use crate::crypto::{hkdf_sha256, HmacKey};
use crate::keys::{IdentityKey, IdentityKeyPair, KeyPair, PrivateKey, PublicKey};

/// The scheme and version that open a link code.
pub const LINK_CODE_PREFIX: &str = "pawl-link:1,";
/// HKDF info of the link MAC key.
const LINK_MAC_INFO: &[u8] = b"Pawl Link Secret MAC v1";
/// Longest link code accepted by the parser (a QR code's payload, not a file).
const MAX_LINK_CODE: usize = 512;

/// The 32-byte linking secret ("Linking Secret Key"). Zeroized, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LinkSecret([u8; 32]);

impl std::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSecret(<redacted>)")
    }
}

/// What the companion's QR code carries.
#[derive(Clone, Debug)]
pub struct LinkInvite {
    /// The relay's pairing reference (routes the primary's offer to this companion).
    pub link_ref: Vec<u8>,
    /// The companion's identity key.
    pub identity: IdentityKey,
    /// The companion's ephemeral key for this code.
    pub ephemeral: PublicKey,
    /// The link secret.
    pub secret: LinkSecret,
    /// Platform: one character (`0` unknown, `c` macOS, `7` desktop app, `9` web, ...).
    pub platform: char,
}

/// The companion's side of one code: the invite and the ephemeral private key.
#[derive(Debug)]
pub struct CompanionLink {
    invite: LinkInvite,
    ephemeral: PrivateKey,
}

/// The primary's answer, relayed to the companion.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkOffer {
    /// Encoded [`SignedDeviceIdentity`] (account signature only).
    #[prost(bytes = "vec", tag = "1")]
    pub identity: Vec<u8>,
    /// Encoded [`SignedDeviceList`] that includes the companion.
    #[prost(bytes = "vec", tag = "2")]
    pub device_list: Vec<u8>,
    /// The primary's ephemeral key (32 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub ephemeral: Vec<u8>,
    /// HMAC-SHA256 over `identity ‖ device_list` (see the module docs).
    #[prost(bytes = "vec", tag = "4")]
    pub mac: Vec<u8>,
}

/// What the companion accepted: everything it stores and uploads.
#[derive(Clone, Debug)]
pub struct AcceptedLink {
    /// Its identity with both signatures (uploaded to the relay).
    pub identity: SignedDeviceIdentity,
    /// The details it was linked with (account, device id, key index).
    pub details: DeviceIdentityDetails,
    /// The primary's identity key (stored as the identity of the account's device 1).
    pub primary: IdentityKey,
    /// The device list that includes it.
    pub device_list: SignedDeviceList,
    /// That list's content.
    pub list: DeviceListData,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str, what: &'static str) -> Result<Vec<u8>, DeviceError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| DeviceError::BadLinkCode(what))
}

fn key32(s: &str, what: &'static str) -> Result<[u8; 32], DeviceError> {
    unb64(s, what)?
        .try_into()
        .map_err(|_| DeviceError::BadLinkCode(what))
}

fn mac_key(secret: &LinkSecret, dh: &[u8; 32]) -> HmacKey {
    let mut ikm = [0u8; 64];
    ikm[..32].copy_from_slice(&secret.0);
    ikm[32..].copy_from_slice(dh);
    let mut k = [0u8; 32];
    hkdf_sha256(None, &ikm, &[LINK_MAC_INFO], &mut k);
    let key = HmacKey::new(&k);
    ikm.zeroize();
    k.zeroize();
    key
}

impl LinkInvite {
    /// The text in the QR code.
    pub fn to_code(&self) -> String {
        format!(
            "{LINK_CODE_PREFIX}{},{},{},{},{}",
            b64(&self.link_ref),
            b64(self.identity.public_key().u_bytes()),
            b64(self.ephemeral.u_bytes()),
            b64(&self.secret.0),
            self.platform
        )
    }

    /// Parse a scanned code (typed errors; never panics).
    pub fn parse(code: &str) -> Result<Self, DeviceError> {
        if code.len() > MAX_LINK_CODE {
            return Err(DeviceError::BadLinkCode("too long"));
        }
        let rest = code
            .trim()
            .strip_prefix(LINK_CODE_PREFIX)
            .ok_or(DeviceError::BadLinkCode("not a Pawl link code"))?;
        let f: Vec<&str> = rest.split(',').collect();
        let [r, ik, eph, secret, platform] = f.as_slice() else {
            return Err(DeviceError::BadLinkCode("field count"));
        };
        let link_ref = unb64(r, "ref")?;
        if link_ref.is_empty() || link_ref.len() > 64 {
            return Err(DeviceError::BadLinkCode("ref"));
        }
        let canonical = |u: [u8; 32], what| {
            let mut b = [5u8; 33];
            b[1..].copy_from_slice(&u);
            PublicKey::from_bytes(&b).map_err(|_| DeviceError::BadLinkCode(what))
        };
        let identity = IdentityKey::new(canonical(key32(ik, "identity")?, "identity")?);
        let ephemeral = canonical(key32(eph, "ephemeral")?, "ephemeral")?;
        let secret = LinkSecret(key32(secret, "secret")?);
        let mut chars = platform.chars();
        let (Some(p), None) = (chars.next(), chars.next()) else {
            return Err(DeviceError::BadLinkCode("platform"));
        };
        if !p.is_ascii_alphanumeric() {
            return Err(DeviceError::BadLinkCode("platform"));
        }
        Ok(LinkInvite {
            link_ref,
            identity,
            ephemeral,
            secret,
            platform: p,
        })
    }

    /// The primary's answer: vouch for the companion as `device_id` of `user` with
    /// `key_index`, in the new device list `list` (which must contain that index).
    pub fn offer<R: RngCore + CryptoRng>(
        &self,
        primary: &IdentityKeyPair,
        details: &DeviceIdentityDetails,
        list: &DeviceListData,
        rng: &mut R,
    ) -> Result<LinkOffer, DeviceError> {
        if details.identity_key != self.identity.serialize() {
            return Err(DeviceError::NotForThisDevice);
        }
        if !list.contains(details.key_index) || list.user != details.user {
            return Err(DeviceError::NotOnList(details.device_id));
        }
        let identity = SignedDeviceIdentity::sign_account(primary, details, rng)?.encode_to_vec();
        let device_list = SignedDeviceList::sign(primary, list, rng).to_bytes();
        let eph = KeyPair::generate(rng);
        let dh = eph
            .private
            .agree(&self.ephemeral)
            .map_err(|_| DeviceError::BadLinkCode("ephemeral"))?;
        let mac = mac_key(&self.secret, &dh).mac(&[&identity, &device_list]);
        Ok(LinkOffer {
            identity,
            device_list,
            ephemeral: eph.public.u_bytes().to_vec(),
            mac: mac.to_vec(),
        })
    }
}

impl CompanionLink {
    /// A new code for `identity` under the relay's `link_ref`.
    pub fn new<R: RngCore + CryptoRng>(
        link_ref: Vec<u8>,
        identity: &IdentityKey,
        platform: char,
        rng: &mut R,
    ) -> Self {
        let eph = KeyPair::generate(rng);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        CompanionLink {
            invite: LinkInvite {
                link_ref,
                identity: *identity,
                ephemeral: eph.public,
                secret: LinkSecret(secret),
                platform,
            },
            ephemeral: eph.private,
        }
    }

    /// The invite (for the QR code: [`LinkInvite::to_code`]).
    pub fn invite(&self) -> &LinkInvite {
        &self.invite
    }

    /// Check the primary's offer and counter-sign: the MAC (so the offer answers this
    /// code), the account signature over details that name this identity, and the
    /// device list signed by the same primary for the same account with this key index.
    pub fn accept<R: RngCore + CryptoRng>(
        &self,
        offer: &LinkOffer,
        me: &IdentityKeyPair,
        rng: &mut R,
    ) -> Result<AcceptedLink, DeviceError> {
        if me.identity_key() != &self.invite.identity {
            return Err(DeviceError::NotForThisDevice);
        }
        let eph: [u8; 32] = offer
            .ephemeral
            .as_slice()
            .try_into()
            .map_err(|_| DeviceError::Malformed("ephemeral key"))?;
        let dh = self
            .ephemeral
            .agree(&PublicKey::from_u_bytes(eph))
            .map_err(|_| DeviceError::Malformed("ephemeral key"))?;
        let mac = mac_key(&self.invite.secret, &dh).mac(&[&offer.identity, &offer.device_list]);
        if offer.mac.len() != 32 || !bool::from(mac.ct_eq(offer.mac.as_slice())) {
            return Err(DeviceError::BadLinkMac);
        }
        let mut identity = SignedDeviceIdentity::decode_from(&offer.identity)?;
        identity.sign_device(me, rng)?;
        let details = identity.details()?;
        let primary = IdentityKey::from_bytes(&identity.account_signature_key)
            .map_err(|_| DeviceError::Malformed("primary identity"))?;
        let device_list = SignedDeviceList::decode_from(&offer.device_list)?;
        let list = device_list.verify(primary.public_key(), &details.user)?;
        if !list.contains(details.key_index) {
            return Err(DeviceError::NotOnList(details.device_id));
        }
        Ok(AcceptedLink {
            identity,
            details,
            primary,
            device_list,
            list,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_core::OsRng;

    fn setup() -> (IdentityKeyPair, IdentityKeyPair, CompanionLink) {
        let primary = IdentityKeyPair::generate(&mut OsRng);
        let companion = IdentityKeyPair::generate(&mut OsRng);
        let link = CompanionLink::new(vec![1, 2, 3], companion.identity_key(), '7', &mut OsRng);
        (primary, companion, link)
    }

    fn details(c: &IdentityKeyPair) -> (DeviceIdentityDetails, DeviceListData) {
        (
            DeviceIdentityDetails {
                user: "+491".into(),
                device_id: 2,
                timestamp_ms: 7,
                key_index: 1,
                identity_key: c.identity_key().serialize().to_vec(),
            },
            DeviceListData {
                user: "+491".into(),
                version: 2,
                timestamp_ms: 7,
                current_index: 1,
                valid_indexes: vec![1],
            },
        )
    }

    #[test]
    fn code_round_trips_and_the_link_completes() {
        let (primary, companion, link) = setup();
        let code = link.invite().to_code();
        assert!(code.starts_with("pawl-link:1,"));
        let scanned = LinkInvite::parse(&code).unwrap();
        assert_eq!(scanned.identity, *companion.identity_key());
        assert_eq!(scanned.link_ref, vec![1, 2, 3]);
        let (d, l) = details(&companion);
        let offer = scanned.offer(&primary, &d, &l, &mut OsRng).unwrap();
        let accepted = link.accept(&offer, &companion, &mut OsRng).unwrap();
        assert_eq!(accepted.primary, *primary.identity_key());
        assert_eq!(accepted.details, d);
        assert_eq!(accepted.list, l);
        accepted
            .identity
            .verify(primary.identity_key(), "+491", 2, companion.identity_key())
            .unwrap();
    }

    #[test]
    fn a_tampered_offer_or_another_codes_offer_is_refused() {
        let (primary, companion, link) = setup();
        let scanned = LinkInvite::parse(&link.invite().to_code()).unwrap();
        let (d, l) = details(&companion);
        let offer = scanned.offer(&primary, &d, &l, &mut OsRng).unwrap();
        let bytes = offer.encode_to_vec();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            if let Ok(o) = LinkOffer::decode(b.as_slice()) {
                assert!(link.accept(&o, &companion, &mut OsRng).is_err(), "byte {i}");
            }
        }
        // The relay (which never saw the secret) cannot make an offer of its own.
        let other = CompanionLink::new(vec![1, 2, 3], companion.identity_key(), '7', &mut OsRng);
        let forged = LinkInvite::parse(&other.invite().to_code())
            .unwrap()
            .offer(&primary, &d, &l, &mut OsRng)
            .unwrap();
        assert_eq!(
            link.accept(&forged, &companion, &mut OsRng).unwrap_err(),
            DeviceError::BadLinkMac
        );
    }

    #[test]
    fn malformed_codes_are_typed_errors() {
        let (_, _, link) = setup();
        let good = link.invite().to_code();
        for bad in [
            String::new(),
            "pawl-link:1,".into(),
            "https://wa.me/settings/linked_devices#a,b,c,d".into(),
            good.replace("pawl-link:1", "pawl-link:2"),
            format!("{good},x"),
            good[..good.len() - 2].to_string(),
            good.replacen(',', ",!", 2),
            format!("{good}{}", "A".repeat(600)),
        ] {
            assert!(
                matches!(LinkInvite::parse(&bad), Err(DeviceError::BadLinkCode(_))),
                "{bad}"
            );
        }
        for cut in 0..good.len() {
            if let Some(s) = good.get(..cut) {
                assert!(LinkInvite::parse(s).is_err());
            }
        }
    }
}
