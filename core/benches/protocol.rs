//! Protocol benchmarks, each next to its primitive lower bound measured in the same run.
//!
//! The bound of an operation is the sequence of primitive calls the protocol cannot
//! avoid (X25519, fixed-base multiplication, HMAC-SHA256, HKDF-SHA256, AES-256-CBC,
//! SHA-512, the Edwards arithmetic of XEdDSA), each made one-shot with the same crates
//! Pawl uses. `python3 core/benches/report.py` prints the table of ratios afterwards.
//!
//! Run: `cargo bench -p pawl-core --bench protocol`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use hmac::{Hmac, Mac};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256, Sha512};

use pawl_core::fingerprint::{Fingerprint, ScannableVersion, DEFAULT_ITERATIONS};
use pawl_core::keys::{
    generate_registration_id, IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord,
};
use pawl_core::store::{InMemProtocolStore, PreKeyStore, SessionStore, SignedPreKeyStore};
use pawl_core::*;

// ---------------------------------------------------------------- primitive bounds

fn hmac(key: &[u8], data: &[&[u8]]) -> [u8; 32] {
    let mut m = <Hmac<Sha256>>::new_from_slice(key).unwrap();
    for d in data {
        m.update(d);
    }
    m.finalize().into_bytes().into()
}

fn hkdf(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], out: &mut [u8]) {
    hkdf::Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, out)
        .unwrap();
}

fn cbc_enc(key: &[u8; 32], iv: &[u8; 16], pt: &[u8]) -> Vec<u8> {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(pt)
}

fn cbc_dec(key: &[u8; 32], iv: &[u8; 16], ct: &[u8]) -> Vec<u8> {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .unwrap()
}

fn x25519(k: [u8; 32], u: [u8; 32]) -> [u8; 32] {
    MontgomeryPoint(u).mul_clamped(k).to_bytes()
}

fn keygen(rng: &mut ChaCha20Rng) -> ([u8; 32], [u8; 32]) {
    let mut k = [0u8; 32];
    rng.fill_bytes(&mut k);
    (k, MontgomeryPoint::mul_base_clamped(k).to_bytes())
}

/// One message on a symmetric chain, one side: 2 HMAC (chain step), HKDF-80 (message
/// keys), AES-256-CBC, HMAC over identities ‖ header ‖ ciphertext (the 8-byte MAC).
fn bound_symmetric_send(ck: &[u8; 32], pt: &[u8]) -> Vec<u8> {
    let seed = hmac(ck, &[&[1]]);
    let _next = hmac(ck, &[&[2]]);
    let mut mk = [0u8; 80];
    hkdf(None, &seed, b"WhisperMessageKeys", &mut mk);
    let ct = cbc_enc(
        mk[..32].try_into().unwrap(),
        mk[64..].try_into().unwrap(),
        pt,
    );
    let mut body = Vec::with_capacity(ct.len() + 50);
    body.extend_from_slice(&[0x33; 46]);
    body.extend_from_slice(&ct);
    let mac = hmac(&mk[32..64], &[&[5; 66], &body]);
    body.extend_from_slice(&mac[..8]);
    body
}

fn bound_symmetric_recv(ck: &[u8; 32], wire: &[u8]) -> Vec<u8> {
    let seed = hmac(ck, &[&[1]]);
    let _next = hmac(ck, &[&[2]]);
    let mut mk = [0u8; 80];
    hkdf(None, &seed, b"WhisperMessageKeys", &mut mk);
    let n = wire.len();
    let mac = hmac(&mk[32..64], &[&[5; 66], &wire[..n - 8]]);
    assert_eq!(&mac[..8], &wire[n - 8..]);
    cbc_dec(
        mk[..32].try_into().unwrap(),
        mk[64..].try_into().unwrap(),
        &wire[46..n - 8],
    )
}

/// A DH ratchet step as the receiver does it: DH + root HKDF for the receiving chain,
/// a new key pair, DH + root HKDF for the next sending chain.
fn bound_ratchet_step(rng: &mut ChaCha20Rng, rk: &[u8; 32], ours: [u8; 32], theirs: [u8; 32]) {
    let mut out = [0u8; 64];
    hkdf(Some(rk), &x25519(ours, theirs), b"WhisperRatchet", &mut out);
    let (k, _p) = keygen(rng);
    let rk2: [u8; 32] = out[..32].try_into().unwrap();
    hkdf(Some(&rk2), &x25519(k, theirs), b"WhisperRatchet", &mut out);
    black_box(out);
}

/// XEdDSA sign with a cached Edwards public key: hash, fixed-base mult, hash, scalar ops.
fn bound_sign(k: &[u8; 32], a_pub: &[u8; 32], msg: &[u8], rng: &mut ChaCha20Rng) -> [u8; 64] {
    let mut z = [0u8; 64];
    rng.fill_bytes(&mut z);
    let r = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update([0xfe; 32])
            .chain_update(k)
            .chain_update(msg)
            .chain_update(z)
            .finalize()
            .into(),
    );
    let cap_r = EdwardsPoint::mul_base(&r).compress();
    let h = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(cap_r.as_bytes())
            .chain_update(a_pub)
            .chain_update(msg)
            .finalize()
            .into(),
    );
    let s = h * Scalar::from_bytes_mod_order(*k) + r;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(cap_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// XEdDSA verify with a cached Edwards point: hash, double-base mult, compress.
fn bound_verify(minus_a: &EdwardsPoint, a_pub: &[u8; 32], msg: &[u8], sig: &[u8; 64]) {
    let h = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(&sig[..32])
            .chain_update(a_pub)
            .chain_update(msg)
            .finalize()
            .into(),
    );
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    let s = Scalar::from_canonical_bytes(s).unwrap();
    let r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, minus_a, &s).compress();
    assert_eq!(r.as_bytes(), &sig[..32]);
}

/// XEdDSA verify of a key seen for the first time (bundle signature): converts the
/// Montgomery key to Edwards first.
fn bound_verify_fresh(u: [u8; 32], msg: &[u8], sig: &[u8; 64]) {
    let a = MontgomeryPoint(u).to_edwards(sig[63] >> 7).unwrap();
    let a_pub = a.compress().to_bytes();
    let mut s = *sig;
    s[63] &= 0x7f;
    bound_verify(&-a, &a_pub, msg, &s);
}

// ---------------------------------------------------------------- Pawl fixtures

struct Dev {
    addr: ProtocolAddress,
    store: InMemProtocolStore,
    spk: SignedPreKeyRecord,
}

fn dev(name: &str, rng: &mut ChaCha20Rng) -> Dev {
    let id = IdentityKeyPair::generate(rng);
    let mut store = InMemProtocolStore::new(id.clone(), generate_registration_id(rng));
    let spk = SignedPreKeyRecord::generate(1, 0, &id, rng);
    store.save_signed_pre_key(&spk).unwrap();
    Dev {
        addr: ProtocolAddress::new(name, 1),
        store,
        spk,
    }
}

fn bundle(d: &mut Dev, id: u32, rng: &mut ChaCha20Rng) -> PreKeyBundle {
    use pawl_core::store::IdentityKeyStore;
    let pk = PreKeyRecord::generate(id, rng);
    d.store.save_pre_key(&pk).unwrap();
    PreKeyBundle {
        registration_id: 1,
        device_id: 1,
        prekey: Some((id, pk.key_pair.public)),
        signed_prekey_id: 1,
        signed_prekey: d.spk.key_pair.public,
        signed_prekey_signature: d.spk.signature.to_vec(),
        identity_key: *d.store.identity_key_pair().unwrap().identity_key(),
    }
}

/// Two records with an acknowledged session (both sides send SignalMessages).
fn session_pair(rng: &mut ChaCha20Rng) -> (Dev, Dev) {
    let mut a = dev("alice", rng);
    let mut b = dev("bob", rng);
    let bb = bundle(&mut b, 1, rng);
    process_prekey_bundle(&mut a.store, &b.addr, &bb, rng).unwrap();
    let m = message_encrypt(&mut a.store, &b.addr, b"hi").unwrap();
    message_decrypt(&mut b.store, &a.addr, &m, rng).unwrap();
    let r = message_encrypt(&mut b.store, &a.addr, b"hi").unwrap();
    message_decrypt(&mut a.store, &b.addr, &r, rng).unwrap();
    (a, b)
}

fn benches(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let pt = [0x61u8; 100];

    // --- steady one-direction encrypt + decrypt, 100 bytes
    {
        let (a, b) = session_pair(&mut rng);
        let mut ra = a.store.load_session(&b.addr).unwrap().unwrap();
        let mut rb = b.store.load_session(&a.addr).unwrap().unwrap();
        let mut g = c.benchmark_group("one_direction_100B");
        g.bench_function("pawl", |bn| {
            bn.iter(|| {
                let m = ra.encrypt(black_box(&pt)).unwrap();
                let p = rb.decrypt_bytes(2, m.serialized(), &mut rng).unwrap();
                black_box(p)
            })
        });
        let ck = [7u8; 32];
        g.bench_function("bound", |bn| {
            bn.iter(|| {
                let w = bound_symmetric_send(&ck, black_box(&pt));
                black_box(bound_symmetric_recv(&ck, &w))
            })
        });
        g.finish();
    }

    // --- the same through the store API (in-memory store: load + store per message)
    {
        let (mut a, mut b) = session_pair(&mut rng);
        let mut g = c.benchmark_group("one_direction_100B_store");
        g.bench_function("pawl", |bn| {
            bn.iter(|| {
                let m = message_encrypt(&mut a.store, &b.addr, black_box(&pt)).unwrap();
                black_box(message_decrypt(&mut b.store, &a.addr, &m, &mut rng).unwrap())
            })
        });
        g.finish();
    }

    // --- ping-pong: every message turns the ratchet (iteration = 2 messages)
    {
        let (a, b) = session_pair(&mut rng);
        let mut ra = a.store.load_session(&b.addr).unwrap().unwrap();
        let mut rb = b.store.load_session(&a.addr).unwrap().unwrap();
        let mut g = c.benchmark_group("ping_pong_2_messages");
        g.bench_function("pawl", |bn| {
            bn.iter(|| {
                let m = ra.encrypt(&pt).unwrap();
                rb.decrypt_bytes(2, m.serialized(), &mut rng).unwrap();
                let r = rb.encrypt(&pt).unwrap();
                black_box(ra.decrypt_bytes(2, r.serialized(), &mut rng).unwrap())
            })
        });
        let (ka, pa) = keygen(&mut rng);
        let (kb, pb) = keygen(&mut rng);
        let ck = [7u8; 32];
        g.bench_function("bound", |bn| {
            bn.iter(|| {
                for _ in 0..2 {
                    let w = bound_symmetric_send(&ck, &pt);
                    bound_ratchet_step(&mut rng, &ck, kb, pa);
                    black_box(bound_symmetric_recv(&ck, &w));
                }
                black_box((ka, pb))
            })
        });
        g.finish();
    }

    // --- X3DH both sides: bundle check, session setup, first message each way
    {
        let mut g = c.benchmark_group("x3dh_both_sides");
        g.sample_size(30);
        let mut seed = 100u64;
        g.bench_function("pawl", |bn| {
            bn.iter_batched(
                || {
                    seed += 1;
                    let mut r = ChaCha20Rng::seed_from_u64(seed);
                    let a = dev("alice", &mut r);
                    let mut b = dev("bob", &mut r);
                    let bb = bundle(&mut b, 1, &mut r);
                    (a, b, bb)
                },
                |(mut a, mut b, bb)| {
                    process_prekey_bundle(&mut a.store, &b.addr, &bb, &mut rng).unwrap();
                    let m = message_encrypt(&mut a.store, &b.addr, &pt).unwrap();
                    black_box(message_decrypt(&mut b.store, &a.addr, &m, &mut rng).unwrap())
                },
                criterion::BatchSize::SmallInput,
            )
        });
        let id = IdentityKeyPair::generate(&mut rng);
        let spk = SignedPreKeyRecord::generate(1, 0, &id, &mut rng);
        let spk_pub = spk.key_pair.public.serialize();
        let sig = spk.signature;
        let (ika, ipa) = keygen(&mut rng);
        let (ikb, ipb) = keygen(&mut rng);
        let (spkb, spkp) = keygen(&mut rng);
        let (otkb, otkp) = keygen(&mut rng);
        let ck = [3u8; 32];
        g.bench_function("bound", |bn| {
            bn.iter(|| {
                // Alice: verify the signed prekey, base key, 4 DH, HKDF, sending ratchet.
                bound_verify_fresh(*id.public_key().u_bytes(), &spk_pub, &sig);
                let (ea, epa) = keygen(&mut rng);
                let mut s = [0xffu8; 160];
                s[32..64].copy_from_slice(&x25519(ika, spkp));
                s[64..96].copy_from_slice(&x25519(ea, ipb));
                s[96..128].copy_from_slice(&x25519(ea, spkp));
                s[128..].copy_from_slice(&x25519(ea, otkp));
                let mut out = [0u8; 64];
                hkdf(None, &s, b"WhisperText", &mut out);
                let (ra, rpa) = keygen(&mut rng);
                let rk2: [u8; 32] = out[..32].try_into().unwrap();
                hkdf(Some(&rk2), &x25519(ra, spkp), b"WhisperRatchet", &mut out);
                let w = bound_symmetric_send(&ck, &pt);
                // Bob: 4 DH, HKDF, then the first message's ratchet step.
                s[32..64].copy_from_slice(&x25519(spkb, ipa));
                s[64..96].copy_from_slice(&x25519(ikb, epa));
                s[96..128].copy_from_slice(&x25519(spkb, epa));
                s[128..].copy_from_slice(&x25519(otkb, epa));
                hkdf(None, &s, b"WhisperText", &mut out);
                bound_ratchet_step(&mut rng, &ck, spkb, rpa);
                black_box(bound_symmetric_recv(&ck, &w))
            })
        });
        g.finish();
    }

    // --- group message encrypt + decrypt (100 B)
    {
        let mut sender = SenderKeyRecord::new();
        let mut receiver = SenderKeyRecord::new();
        let d = sender.rotate(&mut rng);
        receiver.process_distribution(&d).unwrap();
        let mut g = c.benchmark_group("group_100B");
        g.bench_function("pawl", |bn| {
            bn.iter(|| {
                let m = sender.encrypt(&pt, &mut rng).unwrap();
                black_box(receiver.decrypt(m.serialized()).unwrap())
            })
        });
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        k[0] &= 248;
        k[31] = (k[31] & 127) | 64;
        let a = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(k));
        let a_pub = a.compress().to_bytes();
        let minus_a = -a;
        let ck = [9u8; 32];
        g.bench_function("bound", |bn| {
            bn.iter(|| {
                // Sender: chain step, HKDF-48, AES-CBC, sign.
                let seed = hmac(&ck, &[&[1]]);
                let _n = hmac(&ck, &[&[2]]);
                let mut mk = [0u8; 48];
                hkdf(None, &seed, b"WhisperGroup", &mut mk);
                let mut body = vec![0x33u8; 9];
                body.extend_from_slice(&cbc_enc(
                    mk[16..].try_into().unwrap(),
                    mk[..16].try_into().unwrap(),
                    &pt,
                ));
                let sig = bound_sign(&k, &a_pub, &body, &mut rng);
                // Receiver: verify, chain step, HKDF-48, AES-CBC.
                bound_verify(&minus_a, &a_pub, &body, &sig);
                let seed = hmac(&ck, &[&[1]]);
                let _n = hmac(&ck, &[&[2]]);
                hkdf(None, &seed, b"WhisperGroup", &mut mk);
                black_box(cbc_dec(
                    mk[16..].try_into().unwrap(),
                    mk[..16].try_into().unwrap(),
                    &body[9..],
                ))
            })
        });
        g.finish();
    }

    // --- safety number, both sides (each side hashes both parties, 5200 iterations)
    {
        let ia = IdentityKey::new(KeyPair::generate(&mut rng).public);
        let ib = IdentityKey::new(KeyPair::generate(&mut rng).public);
        let mut g = c.benchmark_group("safety_number_both_sides");
        g.sample_size(20);
        g.bench_function("pawl", |bn| {
            bn.iter(|| {
                let x = Fingerprint::new(
                    ScannableVersion::V2,
                    DEFAULT_ITERATIONS,
                    b"+1415",
                    &ia,
                    b"+1416",
                    &ib,
                )
                .unwrap();
                let y = Fingerprint::new(
                    ScannableVersion::V2,
                    DEFAULT_ITERATIONS,
                    b"+1416",
                    &ib,
                    b"+1415",
                    &ia,
                )
                .unwrap();
                black_box(x.compare_scanned(&y.scannable).unwrap())
            })
        });
        g.bench_function("bound", |bn| {
            bn.iter(|| {
                for key in [ia, ib, ib, ia] {
                    let k = key.serialize();
                    let mut h: [u8; 64] = Sha512::new()
                        .chain_update([0, 0])
                        .chain_update(k)
                        .chain_update(b"+1415")
                        .chain_update(k)
                        .finalize()
                        .into();
                    for _ in 1..DEFAULT_ITERATIONS {
                        h = Sha512::new()
                            .chain_update(h)
                            .chain_update(k)
                            .finalize()
                            .into();
                    }
                    black_box(h);
                }
            })
        });
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(50)
}

// criterion_group! generates an undocumented function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group! { name = protocol; config = config(); targets = benches }
}
use group::protocol;
criterion_main!(protocol);
