//! The workloads of the browser-against-native benchmark (issue 13), written once and
//! run by both sides in the same run: natively by `core/benches/web_compare.rs`, in the
//! browser by `pawl-web`'s bench export (`bindings/web/src/bench.rs`, feature `bench`),
//! both driven by `bindings/web/bench.sh`. Only the clock differs: each function takes
//! `now`, a monotonic clock in milliseconds (`Instant` natively, `performance.now()` in
//! the browser), and times only the work it names, over many iterations (a Worker's
//! `performance.now()` is coarsened to 0.1 ms); setup stays outside the timed span.
//!
//! Randomness is the caller's (`OsRng` on both sides, as the client uses).
//! Not a stable API: bench support only.

use std::hint::black_box;

use rand_core::{CryptoRng, RngCore};

use crate::keys::{
    generate_registration_id, IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord,
};
use crate::store::{IdentityKeyStore, InMemProtocolStore, PreKeyStore, SignedPreKeyStore};
use crate::SessionError;
use crate::{message_decrypt, message_encrypt, process_prekey_bundle, ProtocolAddress};

/// The plaintext size of the steady and burst messages.
pub const MESSAGE_BYTES: usize = 100;
/// X3DH cases timed per round.
pub const X3DH_ITERATIONS: u32 = 200;
/// Steady messages timed per round.
pub const STEADY_ITERATIONS: u32 = 10_000;
/// Messages in one burst.
pub const BURST_MESSAGES: usize = 1000;
/// Rounds of each workload; the median is reported.
pub const ROUNDS: u32 = 5;
/// The database key of the bench's encrypted store (a throwaway).
pub const STORE_KEY: [u8; 32] = [7; 32];

/// A `MESSAGE_BYTES`-byte text, different for each `i`.
pub fn text(i: usize) -> Vec<u8> {
    let mut t = format!("message {i}: the quick brown fox jumps over the lazy dog ").into_bytes();
    t.resize(MESSAGE_BYTES, b'.');
    t
}

/// The median of `rounds` (at least one) runs of `f`.
pub fn median_of<E>(rounds: u32, mut f: impl FnMut() -> Result<f64, E>) -> Result<f64, E> {
    let mut v = (0..rounds.max(1))
        .map(|_| f())
        .collect::<Result<Vec<f64>, E>>()?;
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Ok(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn check(got: &[u8], sent: &[u8]) -> Result<(), SessionError> {
    if got == sent {
        Ok(())
    } else {
        Err(SessionError::InvalidMessage(
            "bench: the decrypted text differs from the sent one".into(),
        ))
    }
}

/// A device in memory: its address, store and signed prekey.
struct Device {
    address: ProtocolAddress,
    store: InMemProtocolStore,
    signed: SignedPreKeyRecord,
}

impl Device {
    fn new<R: RngCore + CryptoRng>(name: &str, rng: &mut R) -> Result<Self, SessionError> {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKeyRecord::generate(1, 0, &identity, rng);
        let mut store = InMemProtocolStore::new(identity, generate_registration_id(rng));
        store.save_signed_pre_key(&signed)?;
        Ok(Device {
            address: ProtocolAddress::new(name, 1),
            store,
            signed,
        })
    }

    /// A bundle with a one-time prekey (saved in this store), as the relay hands out.
    fn bundle<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<PreKeyBundle, SessionError> {
        let one_time = PreKeyRecord::generate(1, rng);
        self.store.save_pre_key(&one_time)?;
        Ok(PreKeyBundle::from_records(
            self.store.local_registration_id()?,
            1,
            *self.store.identity_key_pair()?.identity_key(),
            &self.signed,
            Some(&one_time),
        ))
    }

    /// One message from this device to `to`: encrypt, decrypt, compare.
    fn send<R: RngCore + CryptoRng>(
        &mut self,
        to: &mut Device,
        text: &[u8],
        rng: &mut R,
    ) -> Result<(), SessionError> {
        let m = message_encrypt(&mut self.store, &to.address, text)?;
        let got = message_decrypt(&mut to.store, &self.address, &m, rng)?;
        check(black_box(&got), text)
    }
}

/// Two fresh devices and Bob's bundle: what one X3DH needs, made before the clock runs.
pub struct X3dhCase {
    alice: Device,
    bob: Device,
    bundle: PreKeyBundle,
}

impl X3dhCase {
    /// New identities, signed prekeys and a one-time prekey (not timed).
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> Result<Self, SessionError> {
        let alice = Device::new("alice", rng)?;
        let mut bob = Device::new("bob", rng)?;
        let bundle = bob.bundle(rng)?;
        Ok(X3dhCase { alice, bob, bundle })
    }

    /// X3DH both sides and the first message: Alice checks Bob's bundle, starts the
    /// session and encrypts a `MESSAGE_BYTES` text; Bob decrypts the
    /// PreKeySignalMessage (his side of X3DH, the first ratchet step).
    pub fn run<R: RngCore + CryptoRng>(self, rng: &mut R) -> Result<(), SessionError> {
        self.establish(rng).map(drop)
    }

    /// [`run`](Self::run), keeping the two devices.
    fn establish<R: RngCore + CryptoRng>(
        mut self,
        rng: &mut R,
    ) -> Result<(Device, Device), SessionError> {
        process_prekey_bundle(&mut self.alice.store, &self.bob.address, &self.bundle, rng)?;
        self.alice.send(&mut self.bob, &text(0), rng)?;
        Ok((self.alice, self.bob))
    }
}

/// Mean milliseconds of one [`X3dhCase::run`] over `iterations` cases (made first).
pub fn x3dh_ms<R: RngCore + CryptoRng>(
    iterations: u32,
    rng: &mut R,
    now: &mut dyn FnMut() -> f64,
) -> Result<f64, SessionError> {
    let cases = (0..iterations.max(1))
        .map(|_| X3dhCase::new(rng))
        .collect::<Result<Vec<_>, _>>()?;
    let n = cases.len() as f64;
    let start = now();
    for case in cases {
        case.run(rng)?;
    }
    Ok((now() - start) / n)
}

/// Two devices with an acknowledged session (both sides past the PreKey phase):
/// each [`step`](Self::step) is one steady message, encrypted by Alice and decrypted
/// by Bob through the protocol store API (session loaded and stored each time).
pub struct SteadyPair {
    alice: Device,
    bob: Device,
    counter: usize,
}

impl SteadyPair {
    /// X3DH and one message each way (not timed).
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> Result<Self, SessionError> {
        let (mut alice, mut bob) = X3dhCase::new(rng)?.establish(rng)?;
        bob.send(&mut alice, b"hi", rng)?;
        Ok(SteadyPair {
            alice,
            bob,
            counter: 0,
        })
    }

    /// One `MESSAGE_BYTES` message: encrypt, decrypt, compare.
    pub fn step<R: RngCore + CryptoRng>(&mut self, rng: &mut R) -> Result<(), SessionError> {
        self.counter += 1;
        self.alice.send(&mut self.bob, &text(self.counter), rng)
    }
}

/// Mean microseconds of one [`SteadyPair::step`] over `iterations` (after a few
/// untimed ones).
pub fn steady_us<R: RngCore + CryptoRng>(
    iterations: u32,
    rng: &mut R,
    now: &mut dyn FnMut() -> f64,
) -> Result<f64, SessionError> {
    let mut pair = SteadyPair::new(rng)?;
    for _ in 0..10 {
        pair.step(rng)?;
    }
    let n = iterations.max(1);
    let start = now();
    for _ in 0..n {
        pair.step(rng)?;
    }
    Ok((now() - start) * 1000.0 / f64::from(n))
}

/// Mean microseconds of the symmetric primitives one steady message cannot avoid, both
/// sides, called directly: 2 HMAC-SHA256 (chain step), HKDF-SHA256 to 80 bytes
/// (message keys), AES-256-CBC and an HMAC-SHA256 over the message (its MAC), then
/// the same to check and decrypt. Not a bound: the floor under [`steady_us`], to
/// tell the primitives' cost from the rest of the protocol's.
pub fn steady_primitives_us(iterations: u32, now: &mut dyn FnMut() -> f64) -> f64 {
    use crate::crypto::{aes256_cbc_decrypt, aes256_cbc_encrypt, hkdf_sha256, hmac_sha256};
    let chain_key = [7u8; 32];
    let message_keys = || {
        let seed = hmac_sha256(&chain_key, &[1]);
        black_box(hmac_sha256(&chain_key, &[2]));
        let mut k = [0u8; 80];
        hkdf_sha256(None, &seed, &[b"WhisperMessageKeys"], &mut k);
        let (mut cipher, mut iv) = ([0u8; 32], [0u8; 16]);
        cipher.copy_from_slice(&k[..32]);
        iv.copy_from_slice(&k[64..]);
        (cipher, k, iv)
    };
    // What the MAC covers besides the ciphertext: two identity keys and the header.
    let mut wire = vec![0x33u8; 33 * 2 + 46];
    let header = wire.len();
    let t = text(1);
    let n = iterations.max(1);
    let start = now();
    for _ in 0..n {
        let (cipher, k, iv) = message_keys();
        wire.truncate(header);
        wire.extend_from_slice(&aes256_cbc_encrypt(&cipher, &iv, &t));
        let mac = hmac_sha256(&k[32..64], &wire);
        let (cipher, k, iv) = message_keys();
        black_box(hmac_sha256(&k[32..64], &wire) == mac);
        black_box(aes256_cbc_decrypt(&cipher, &iv, &wire[header..]));
    }
    (now() - start) * 1000.0 / f64::from(n)
}

#[cfg(feature = "sqlite")]
pub use burst::{burst_into_store, run, Figures};

#[cfg(feature = "sqlite")]
mod burst {
    use rand_core::{CryptoRng, RngCore};

    use super::{
        median_of, steady_us, text, x3dh_ms, Device, BURST_MESSAGES, ROUNDS, STEADY_ITERATIONS,
        X3DH_ITERATIONS,
    };
    use crate::sqlite::messages::{Envelope, Received};
    use crate::sqlite::SqliteStore;
    use crate::store::{IdentityKeyStore, SignedPreKeyStore};
    use crate::{
        message_decrypt_signal, process_prekey_bundle, PreKeyBundle, ProtocolAddress, SessionError,
        SignalMessage,
    };

    /// Milliseconds to decrypt and store a burst of `n` messages from one peer into
    /// `store` with one [`SqliteStore::receive_batch`] (one transaction, as when a
    /// relay queue is drained). Untimed setup: the store gets an identity if it has
    /// none, a new peer (a fresh name each call, so a store can take several bursts)
    /// sets up a session both ways, and encrypts the `n` messages in memory.
    pub fn burst_into_store<R: RngCore + CryptoRng>(
        store: &mut SqliteStore,
        n: usize,
        rng: &mut R,
        now: &mut dyn FnMut() -> f64,
    ) -> Result<f64, SessionError> {
        store.ensure_identity(1, 0, rng)?;
        let identity = store.identity_key_pair()?;
        let signed = store
            .get_signed_pre_key(1)?
            .ok_or(SessionError::InvalidKeyId(1))?;
        let me = ProtocolAddress::new("bench-store", 1);
        let peer_name = format!("bench-peer-{:016x}", rng.next_u64());
        let mut peer = Device::new(&peer_name, rng)?;
        let bundle = PreKeyBundle::from_records(
            store.local_registration_id()?,
            1,
            *identity.identity_key(),
            &signed,
            None,
        );
        process_prekey_bundle(&mut peer.store, &me, &bundle, rng)?;
        let first = crate::message_encrypt(&mut peer.store, &me, b"hi")?;
        let first = Envelope {
            id: b"first",
            message_type: first.message_type(),
            ciphertext: first.serialized(),
            sent_at: 0,
        };
        store.receive(&peer.address, &first, 0, rng)?;
        let (_, reply) = store.send(&peer.address, b"hi back", 0)?;
        let reply = SignalMessage::parse(&reply.payload)?;
        message_decrypt_signal(&mut peer.store, &me, &reply, rng)?;

        let queued = (0..n)
            .map(|i| {
                let m = crate::message_encrypt(&mut peer.store, &me, &text(i))?;
                Ok((format!("burst-{i}").into_bytes(), m))
            })
            .collect::<Result<Vec<_>, SessionError>>()?;
        let envelopes: Vec<Envelope<'_>> = queued
            .iter()
            .map(|(id, m)| Envelope {
                id,
                message_type: m.message_type(),
                ciphertext: m.serialized(),
                sent_at: 0,
            })
            .collect();

        let start = now();
        let out = store.receive_batch(&peer.address, &envelopes, 0, rng)?;
        let ms = now() - start;

        let stored = out
            .into_iter()
            .filter(|r| matches!(r, Ok(Received::New(_))))
            .count();
        if stored != n {
            return Err(SessionError::InvalidMessage(format!(
                "bench: {stored} of {n} burst messages stored"
            )));
        }
        Ok(ms)
    }

    /// The medians of the workloads.
    #[derive(Clone, Copy, Debug)]
    pub struct Figures {
        /// [`x3dh_ms`].
        pub x3dh_ms: f64,
        /// [`steady_us`].
        pub steady_us: f64,
        /// [`steady_primitives_us`](super::steady_primitives_us).
        pub steady_primitives_us: f64,
        /// [`burst_into_store`] of [`BURST_MESSAGES`].
        pub burst_ms: f64,
    }

    impl Figures {
        /// One line of JSON: `{"x3dh_ms":..,"steady_us":..,"burst_1000_ms":..,...}`.
        pub fn json(&self) -> String {
            format!(
                "{{\"x3dh_ms\":{:.4},\"steady_us\":{:.3},\"steady_primitives_us\":{:.3},\
                 \"burst_{BURST_MESSAGES}_ms\":{:.2},\"rounds\":{ROUNDS},\"x3dh_iterations\":{X3DH_ITERATIONS},\
                 \"steady_iterations\":{STEADY_ITERATIONS}}}",
                self.x3dh_ms,
                self.steady_us,
                self.steady_primitives_us,
                self.burst_ms
            )
        }
    }

    /// Every workload, [`ROUNDS`] rounds each, medians; the bursts go into `store`.
    pub fn run<R: RngCore + CryptoRng>(
        store: &mut SqliteStore,
        rng: &mut R,
        now: &mut dyn FnMut() -> f64,
    ) -> Result<Figures, SessionError> {
        Ok(Figures {
            x3dh_ms: median_of(ROUNDS, || x3dh_ms(X3DH_ITERATIONS, rng, now))?,
            steady_us: median_of(ROUNDS, || steady_us(STEADY_ITERATIONS, rng, now))?,
            steady_primitives_us: median_of(ROUNDS, || {
                Ok::<_, SessionError>(super::steady_primitives_us(STEADY_ITERATIONS, now))
            })?,
            burst_ms: median_of(ROUNDS, || burst_into_store(store, BURST_MESSAGES, rng, now))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;

    #[test]
    fn the_workloads_run_and_check_their_texts() {
        let mut clock = 0.0;
        let mut now = || {
            clock += 1.0;
            clock
        };
        assert!(x3dh_ms(2, &mut OsRng, &mut now).unwrap() > 0.0);
        assert!(steady_us(5, &mut OsRng, &mut now).unwrap() > 0.0);
        assert!(steady_primitives_us(5, &mut now) > 0.0);
        let mut round = 0.0;
        let rounds = median_of(4, || {
            round += 1.0;
            Ok::<_, ()>(round)
        });
        assert_eq!(rounds, Ok(2.5));
        #[cfg(feature = "sqlite")]
        {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bench.db");
            let mut store = crate::sqlite::SqliteStore::open(&path, Some(&STORE_KEY)).unwrap();
            // Two bursts into one store: a new peer each time.
            for _ in 0..2 {
                assert!(burst_into_store(&mut store, 20, &mut OsRng, &mut now).unwrap() > 0.0);
            }
        }
    }
}
