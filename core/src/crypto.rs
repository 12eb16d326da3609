//! Symmetric primitives used by the protocol, wrapped so callers cannot misuse them:
//! HMAC-SHA256 (with reusable keyed state), HKDF-SHA256, AES-256-CBC with PKCS#7.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A keyed HMAC-SHA256 whose inner/outer pads are computed once and cloned per use.
#[derive(Clone)]
pub(crate) struct HmacKey(HmacSha256);

impl HmacKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length: this cannot fail.
        match HmacSha256::new_from_slice(key) {
            Ok(m) => HmacKey(m),
            Err(_) => unreachable_hmac(),
        }
    }
    /// HMAC over the concatenation of `parts`.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
    pub(crate) fn start(&self) -> HmacSha256 {
        self.0.clone()
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only fails for fixed-key-size MACs; SHA-256 HMAC takes any size.
    #[allow(clippy::panic)]
    {
        panic!("HMAC-SHA256 rejected a key; this cannot happen")
    }
}

/// One-shot HMAC-SHA256.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    HmacKey::new(key).mac(&[data])
}

/// HKDF-SHA256 (RFC 5869). `salt = None` is the all-zero salt of hash length.
/// `out.len()` must be at most 255*32; the protocol uses 32..=112.
pub(crate) fn hkdf_sha256(salt: Option<&[u8]>, ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let prk = match salt {
        Some(s) => hmac_sha256(s, ikm),
        None => zero_salt().mac(&[ikm]),
    };
    hkdf_expand(&prk, info, out);
}

fn zero_salt() -> &'static HmacKey {
    use std::sync::OnceLock;
    static ZERO: OnceLock<HmacKey> = OnceLock::new();
    ZERO.get_or_init(|| HmacKey::new(&[0u8; 32]))
}

fn hkdf_expand(prk: &[u8; 32], info: &[&[u8]], out: &mut [u8]) {
    let key = HmacKey::new(prk);
    let mut prev: [u8; 32] = [0; 32];
    let mut have_prev = false;
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut m = key.start();
        if have_prev {
            m.update(&prev);
        }
        for p in info {
            m.update(p);
        }
        m.update(&[(i + 1) as u8]);
        prev = m.finalize().into_bytes().into();
        have_prev = true;
        chunk.copy_from_slice(&prev[..chunk.len()]);
    }
    zeroize::Zeroize::zeroize(&mut prev);
}

/// Public HKDF for test vectors and other layers.
pub fn hkdf(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    hkdf_sha256(salt, ikm, &[info], &mut out);
    out
}

/// AES-256-CBC encrypt with PKCS#7 padding.
pub(crate) fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// AES-256-CBC decrypt with PKCS#7 padding; `None` on bad length or padding.
pub(crate) fn aes256_cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ct: &[u8]) -> Option<Vec<u8>> {
    if ct.is_empty() || !ct.len().is_multiple_of(16) {
        return None;
    }
    cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cbc_roundtrip_and_bad_padding() {
        let k = [7u8; 32];
        let iv = [9u8; 16];
        for n in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0xabu8; n];
            let ct = aes256_cbc_encrypt(&k, &iv, &pt);
            assert_eq!(ct.len(), (n / 16 + 1) * 16);
            assert_eq!(aes256_cbc_decrypt(&k, &iv, &ct).unwrap(), pt);
        }
        assert!(aes256_cbc_decrypt(&k, &iv, &[1u8; 15]).is_none());
        assert!(aes256_cbc_decrypt(&k, &iv, &[]).is_none());
        let mut ct = aes256_cbc_encrypt(&k, &iv, b"hello");
        ct[15] ^= 1;
        assert!(aes256_cbc_decrypt(&k, &iv, &ct).is_none());
    }
}
