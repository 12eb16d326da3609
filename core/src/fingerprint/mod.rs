//! Safety numbers: the 60-digit displayable number and the scannable code.
//!
//! Per party: `h = SHA-512(0x0000 ‖ IK ‖ stable_id ‖ IK)`, then `iterations − 1` times
//! `h = SHA-512(h ‖ IK)` (IK in its 33-byte form). Displayable: the first 30 bytes as six
//! 5-byte big-endian numbers mod 100000, 5 digits each; the two 30-digit halves are
//! concatenated smaller first, so both users see the same number. Scannable (version 1
//! and 2): `CombinedFingerprints{version, local{first 32 bytes}, remote{...}}`; version 0
//! carries the identity key and identifier instead. Iterations: 5200 (> 112 bits).

#[cfg(feature = "qr")]
mod qr;

use prost::Message;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::error::{DecodeError, FingerprintError};
use crate::keys::IdentityKey;
use crate::wire::proto::{CombinedFingerprints, LogicalFingerprint};

#[cfg(feature = "qr")]
pub use qr::QrCodeImage;

/// Iterations Pawl uses by default (Signal's value).
pub const DEFAULT_ITERATIONS: u32 = 5200;

/// Scannable-code versions Pawl produces and accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScannableVersion {
    /// Legacy: identity key and identifier in the clear.
    V0,
    /// First 32 bytes of the iterated hash.
    V1,
    /// As V1 with version 2 (libsignal's current value).
    V2,
}

impl ScannableVersion {
    fn number(self) -> u32 {
        match self {
            ScannableVersion::V0 => 0,
            ScannableVersion::V1 => 1,
            ScannableVersion::V2 => 2,
        }
    }
}

/// One party's iterated hash (64 bytes).
fn party_hash(iterations: u32, stable_id: &[u8], key: &IdentityKey) -> [u8; 64] {
    let ik = key.serialize();
    let mut h = Sha512::new();
    h.update([0u8, 0u8]);
    h.update(ik);
    h.update(stable_id);
    h.update(ik);
    let first: [u8; 64] = h.finalize().into();
    // Every later round hashes exactly 64 + 33 = 97 bytes: one padded 128-byte block,
    // so the compression function is called directly on a prepared block.
    let mut block = [0u8; 128];
    block[64..97].copy_from_slice(&ik);
    block[97] = 0x80;
    block[120..128].copy_from_slice(&(97u64 * 8).to_be_bytes());
    let mut out = first;
    for _ in 1..iterations {
        block[..64].copy_from_slice(&out);
        let mut state = SHA512_IV;
        sha2::compress512(&mut state, &[*GenericArray::from_slice(&block)]);
        for (i, w) in state.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_be_bytes());
        }
    }
    out
}

const SHA512_IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

fn display_half(h: &[u8; 64]) -> String {
    let mut s = String::with_capacity(30);
    for chunk in h[..30].chunks(5) {
        let v = chunk.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
        s.push_str(&format!("{:05}", v % 100_000));
    }
    s
}

/// A safety number between us and a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// The 60-digit number, identical on both sides.
    pub displayable: String,
    /// The scannable payload (protobuf) as we show it; the peer scans it.
    pub scannable: Vec<u8>,
    version: u32,
    local: Vec<u8>,
    remote: Vec<u8>,
}

impl Fingerprint {
    /// Compute the safety number between `local` and `remote` (each a stable id —
    /// phone number or account id — and its identity key).
    pub fn new(
        version: ScannableVersion,
        iterations: u32,
        local_id: &[u8],
        local_key: &IdentityKey,
        remote_id: &[u8],
        remote_key: &IdentityKey,
    ) -> Result<Self, FingerprintError> {
        if !(2..=1_000_000).contains(&iterations) {
            return Err(FingerprintError::InvalidArgument(
                "iterations must be in 2..=1000000",
            ));
        }
        let lh = party_hash(iterations, local_id, local_key);
        let rh = party_hash(iterations, remote_id, remote_key);
        let (l, r) = (display_half(&lh), display_half(&rh));
        let displayable = if l <= r { l + &r } else { r + &l };
        let (local, remote, lid, rid) = match version {
            ScannableVersion::V0 => (
                local_key.serialize().to_vec(),
                remote_key.serialize().to_vec(),
                Some(local_id.to_vec()),
                Some(remote_id.to_vec()),
            ),
            _ => (lh[..32].to_vec(), rh[..32].to_vec(), None, None),
        };
        let scannable = encode_scannable(
            version.number(),
            &local,
            lid.as_deref(),
            &remote,
            rid.as_deref(),
        );
        // For V0 the identifier is part of what must match.
        let (local, remote) = match version {
            ScannableVersion::V0 => (
                [local.as_slice(), local_id].concat(),
                [remote.as_slice(), remote_id].concat(),
            ),
            _ => (local, remote),
        };
        Ok(Fingerprint {
            displayable,
            scannable,
            version: version.number(),
            local,
            remote,
        })
    }

    /// Compare a code scanned from the peer's screen with ours: their local must equal
    /// our remote and their remote our local (constant time). `Ok(false)` means the
    /// safety numbers differ; an error means the code is not a fingerprint of this kind.
    pub fn compare_scanned(&self, scanned: &[u8]) -> Result<bool, FingerprintError> {
        let p = CombinedFingerprints::decode(scanned)
            .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        let theirs = p.version.ok_or(DecodeError::MissingField("version"))?;
        if theirs != self.version {
            return Err(FingerprintError::VersionMismatch {
                ours: self.version,
                theirs,
            });
        }
        let part = |f: Option<LogicalFingerprint>, name| -> Result<Vec<u8>, FingerprintError> {
            let f = f.ok_or(DecodeError::MissingField(name))?;
            let mut c = f.content.ok_or(DecodeError::MissingField("content"))?;
            if self.version == 0 {
                c.extend_from_slice(&f.identifier.unwrap_or_default());
            }
            Ok(c)
        };
        let their_local = part(p.local_fingerprint, "local_fingerprint")?;
        let their_remote = part(p.remote_fingerprint, "remote_fingerprint")?;
        let a = their_local.ct_eq(&self.remote);
        let b = their_remote.ct_eq(&self.local);
        Ok(bool::from(a & b))
    }

    /// The scannable code as a QR image (SVG, PNG, terminal).
    #[cfg(feature = "qr")]
    pub fn qr_code(&self) -> Result<QrCodeImage, FingerprintError> {
        QrCodeImage::new(&self.scannable)
    }
}

fn encode_scannable(
    version: u32,
    local: &[u8],
    lid: Option<&[u8]>,
    remote: &[u8],
    rid: Option<&[u8]>,
) -> Vec<u8> {
    CombinedFingerprints {
        version: Some(version),
        local_fingerprint: Some(LogicalFingerprint {
            content: Some(local.to_vec()),
            identifier: lid.map(<[u8]>::to_vec),
        }),
        remote_fingerprint: Some(LogicalFingerprint {
            content: Some(remote.to_vec()),
            identifier: rid.map(<[u8]>::to_vec),
        }),
    }
    .encode_to_vec()
}
