//! Known-answer tests computed independently in Python (hashlib, hmac, and
//! `cryptography` for AES-CBC only), with the script below; protobuf bytes are written
//! by hand there, so the field numbers are pinned too.
//!
//! ```python
//! import hmac, hashlib
//! from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
//! from cryptography.hazmat.primitives import padding
//! def hkdf(ikm, info, n):
//!     prk = hmac.new(b"\0"*32, ikm, hashlib.sha256).digest()
//!     out, t, i = b"", b"", 1
//!     while len(out) < n:
//!         t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest(); out += t; i += 1
//!     return out[:n]
//! def varint(n):
//!     b = b""
//!     while True:
//!         x = n & 0x7f; n >>= 7
//!         if n: b += bytes([x | 0x80])
//!         else: return b + bytes([x])
//! def fld(tag, data): return varint(tag << 3 | 2) + varint(len(data)) + data
//! def vfld(tag, n): return varint(tag << 3) + varint(n)
//! def lt_add(h, item, sign=1):
//!     e = hkdf(item, b"WhatsApp Patch Integrity", 128)
//!     return b"".join(((int.from_bytes(h[i:i+2], "little") + sign * int.from_bytes(e[i:i+2], "little")) % 65536).to_bytes(2, "little") for i in range(0, 128, 2))
//! key, key_id, name = bytes(range(32)), (1).to_bytes(2, "big") + (0x4e8d).to_bytes(4, "big"), b"regular_high"
//! mk = hkdf(key, b"WhatsApp Mutation Keys", 160)
//! ik, ek, vk, sk, pk = (mk[i:i+32] for i in range(0, 160, 32))
//! index = b'["mute","alice@pawl"]'
//! data = fld(1, index) + fld(2, vfld(1, 1700000000000) + fld(4, vfld(1, 1) + vfld(2, 1700003600000))) + vfld(4, 1)
//! iv = bytes(range(0xa0, 0xb0))
//! p = padding.PKCS7(128).padder(); pt = p.update(data) + p.finalize()
//! enc = Cipher(algorithms.AES(ek), modes.CBC(iv)).encryptor(); ct = enc.update(pt) + enc.finalize()
//! def vmac(op): return hmac.new(vk, bytes([op + 1]) + key_id + iv + ct + (len(key_id) + 1).to_bytes(8, "big"), hashlib.sha512).digest()[:32]
//! index_mac = hmac.new(ik, index, hashlib.sha256).digest()
//! vm = vmac(0)
//! lt1 = lt_add(b"\0" * 128, vm)
//! lt2 = lt_add(lt1, vmac(1))
//! snap = hmac.new(sk, lt1 + (1).to_bytes(8, "big") + name, hashlib.sha256).digest()
//! pmac = hmac.new(pk, snap + vm + (1).to_bytes(8, "big") + name, hashlib.sha256).digest()
//! rec = fld(1, index_mac) + fld(2, iv + ct + vm) + fld(3, key_id)
//! patch = vfld(1, 1) + fld(2, fld(2, rec)) + fld(4, snap) + fld(5, pmac) + fld(6, key_id) + vfld(8, 3)
//! for k, v in [("mutation_keys", mk), ("sync_action_data", data), ("index_mac", index_mac), ("ciphertext", ct), ("value_mac_set", vm), ("value_mac_remove", vmac(1)), ("lthash_1", lt1), ("lthash_2", lt2), ("snapshot_mac", snap), ("patch_mac", pmac), ("patch", patch)]:
//!     print(k, v.hex())
//! ```
#![allow(clippy::unwrap_used)]

use prost::Message as _;
use rand_core::{CryptoRng, RngCore};

use super::proto::{MuteAction, SyncActionData};
use super::*;

const MUTATION_KEYS: &str = "61387bcf643616a68bd611a45516b3980418323087d78bf08c615645549434b4900ba2843ba5fb0cee55cf2a4de9503dce68187d3f6b95b420b008bde66f5a20d0879f6b61f0bcba79faad3f47a8a768fd7fc04a6cc8b3ecefedfa087413226f69b2e91be6587307c43c29b027a71fdd55be25f07ca726714115430d23093071693845bdd996652aca9ca0b96d0f081abf29943303c5eb19bdb84f38b24c32ab";
const SYNC_ACTION_DATA: &str =
    "0a155b226d757465222c22616c696365407061776c225d12120880d095ffbc31220908011080adf180bd312001";
const INDEX_MAC: &str = "9d44042075b702c4563cde9a8a309f0c774be8507a424c46a151e20eaaf3976b";
const CIPHERTEXT: &str = "414c35faff403eb9586d07ebcb9f17e6c6dc5c4343d4a268218193a31537b7b92564aee6fbca964ef1e3244c48a24b70";
const VALUE_MAC_SET: &str = "f2feaaefc8c3d67900c513de268c2cbb23b4a02d3bf21a968bb8314bd40ad15a";
const VALUE_MAC_REMOVE: &str = "e6897d0cf8ee1aa19faf4c728f27af7466cd32d471c5e86f21d0145cb3890d18";
const LTHASH_1: &str = "1c017c900988904ded614aff75da87a5b5fa7768c536e617e32a9774528d82d0586e4d2d97f5884853de49b36773652c008d90cb35e31f0d3a1cf5f06a37019c7fcf7f76dd3054f0fd3826f019f5c79c986eca8160f6e36c3a4177b6cbd9a4a7e14a42464b1c3f3a16452752335196e4ca550d76b6fc888212d49ab4924bcd69";
const LTHASH_2: &str = "ad719c8620ab263bc1e8bbe07426da30e6ae51b51fe134ff35e501d847649884924e7cca06c039e18b08572d0e987ce0529eecf9dc7c92dd1195b4ac2973aabeb00ffc746cd9f31c040e402c66f6c36b1593147ca25a3774c991590c66940c640fa29fd22ca0db69398dc8eeb4572c3338da389fc61b6ad9c8b9b67cea1236f5";
const SNAPSHOT_MAC: &str = "78444911fcccdef6c3518db40cca2d14a1532412ac57a5941722705c181b3d6b";
const PATCH_MAC: &str = "a39281f42dc2bc71e358da7282e93f6347bacc107e852d6ef3ec1ecc24dc3856";
const PATCH: &str = "0801128f01128c010a209d44042075b702c4563cde9a8a309f0c774be8507a424c46a151e20eaaf3976b1260a0a1a2a3a4a5a6a7a8a9aaabacadaeaf414c35faff403eb9586d07ebcb9f17e6c6dc5c4343d4a268218193a31537b7b92564aee6fbca964ef1e3244c48a24b70f2feaaefc8c3d67900c513de268c2cbb23b4a02d3bf21a968bb8314bd40ad15a1a06000100004e8d222078444911fcccdef6c3518db40cca2d14a1532412ac57a5941722705c181b3d6b2a20a39281f42dc2bc71e358da7282e93f6347bacc107e852d6ef3ec1ecc24dc38563206000100004e8d4003";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn key() -> SyncKey {
    let data: [u8; 32] = core::array::from_fn(|i| i as u8);
    SyncKey::new(SyncKey::key_id(1, 0x4e8d), data)
}

const IV: [u8; 16] = [
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
];

fn mute() -> SyncActionValue {
    SyncActionValue {
        timestamp: Some(1_700_000_000_000),
        mute: Some(MuteAction {
            muted: Some(true),
            until_ms: Some(1_700_003_600_000),
        }),
        ..Default::default()
    }
}

/// An "RNG" that yields the KAT's IV.
struct FixedIv;
impl RngCore for FixedIv {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for (d, s) in dest.iter_mut().zip(IV.iter().cycle()) {
            *d = *s;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for FixedIv {}

#[test]
fn kat_key_id_layout() {
    let k = key();
    assert_eq!(k.id(), h("000100004e8d").as_slice());
    assert_eq!((k.device_id(), k.epoch()), (Some(1), Some(0x4e8d)));
    assert_eq!(SyncKey::new(vec![1, 2], [0; 32]).epoch(), None);
}

#[test]
fn kat_mutation_keys_and_macs() {
    let k = key();
    let mk = k.expand();
    let expected = h(MUTATION_KEYS);
    let got: Vec<u8> = [
        mk.index,
        mk.value_encryption,
        mk.value_mac,
        mk.snapshot_mac,
        mk.patch_mac,
    ]
    .concat();
    assert_eq!(got, expected);

    let index = encode_index(&mute_index("alice@pawl"));
    assert_eq!(index, r#"["mute","alice@pawl"]"#);
    assert_eq!(mk.index_mac(index.as_bytes()).to_vec(), h(INDEX_MAC));

    let data = SyncActionData {
        index,
        value: Some(mute()),
        padding: Vec::new(),
        version: 1,
    };
    assert_eq!(data.encode_to_vec(), h(SYNC_ACTION_DATA));

    let blob = mk.seal_value(Operation::Set, k.id(), &IV, &h(SYNC_ACTION_DATA));
    assert_eq!(
        blob,
        [IV.to_vec(), h(CIPHERTEXT), h(VALUE_MAC_SET)].concat()
    );
    let body = [IV.to_vec(), h(CIPHERTEXT)].concat();
    assert_eq!(
        mk.value_mac(Operation::Set, k.id(), &body).to_vec(),
        h(VALUE_MAC_SET)
    );
    assert_eq!(
        mk.value_mac(Operation::Remove, k.id(), &body).to_vec(),
        h(VALUE_MAC_REMOVE)
    );
    assert_eq!(
        mk.open_value(Operation::Set, k.id(), &blob).unwrap(),
        h(SYNC_ACTION_DATA)
    );
    assert_eq!(
        mk.open_value(Operation::Remove, k.id(), &blob),
        Err(AppStateError::BadValueMac)
    );

    let mut lt = LtHash::ZERO;
    lt.add(&h(VALUE_MAC_SET));
    assert_eq!(lt.as_bytes().to_vec(), h(LTHASH_1));
    let snap = mk.snapshot_mac(&lt, 1, REGULAR_HIGH);
    assert_eq!(snap.to_vec(), h(SNAPSHOT_MAC));
    let vm: [u8; 32] = h(VALUE_MAC_SET).try_into().unwrap();
    assert_eq!(
        mk.patch_mac(&snap, [&vm], 1, REGULAR_HIGH).to_vec(),
        h(PATCH_MAC)
    );
    lt.add(&h(VALUE_MAC_REMOVE));
    assert_eq!(lt.as_bytes().to_vec(), h(LTHASH_2));
    lt.remove(&h(VALUE_MAC_REMOVE));
    assert_eq!(lt.as_bytes().to_vec(), h(LTHASH_1));
}

#[test]
fn kat_whole_patch() {
    let k = key();
    let state = CollectionState::new(REGULAR_HIGH);
    let m = Mutation::set(mute_index("alice@pawl"), mute());
    let prepared = state.prepare_patch(&[m], &k, 3, &mut FixedIv).unwrap();
    assert_eq!(prepared.bytes(), h(PATCH).as_slice());

    let (next, applied) = state
        .apply_patch(&h(PATCH), |id| (id == k.id()).then(|| k.clone()))
        .unwrap();
    assert_eq!(next.version(), 1);
    assert_eq!(next.hash().as_bytes().to_vec(), h(LTHASH_1));
    assert_eq!(next.get(&mute_index("alice@pawl")), Some(&mute()));
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].op, Operation::Set);
    assert_eq!(&next, prepared.state());
}
