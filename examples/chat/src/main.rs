//! `pawl-chat`: Pawl's CLI client and scripted demo.
//!
//! `pawl-chat demo` is the README's first command. Today it runs two devices in one
//! process over Pawl's protocol layer with in-memory stores; the relay, the SQLite store
//! and the interactive client arrive with later issues and plug in behind it.

use rand::rngs::OsRng;

use pawl_core::fingerprint::{Fingerprint, ScannableVersion, DEFAULT_ITERATIONS};
use pawl_core::keys::{
    generate_registration_id, IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord,
};
use pawl_core::store::{IdentityKeyStore, InMemProtocolStore, PreKeyStore, SignedPreKeyStore};
use pawl_core::*;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Device {
    addr: ProtocolAddress,
    phone: String,
    store: InMemProtocolStore,
}

impl Device {
    fn new(name: &str, phone: &str) -> Result<Self> {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let mut store =
            InMemProtocolStore::new(identity.clone(), generate_registration_id(&mut OsRng));
        store.save_signed_pre_key(&SignedPreKeyRecord::generate(1, 0, &identity, &mut OsRng))?;
        for id in 1..=5 {
            store.save_pre_key(&PreKeyRecord::generate(id, &mut OsRng))?;
        }
        Ok(Device {
            addr: ProtocolAddress::new(name, 1),
            phone: phone.into(),
            store,
        })
    }

    fn bundle(&self) -> Result<PreKeyBundle> {
        let spk = self
            .store
            .get_signed_pre_key(1)?
            .ok_or("no signed prekey")?;
        let pk = self.store.get_pre_key(1)?.ok_or("no prekey")?;
        Ok(PreKeyBundle {
            registration_id: self.store.local_registration_id()?,
            device_id: self.addr.device_id,
            prekey: Some((pk.id, pk.key_pair.public)),
            signed_prekey_id: spk.id,
            signed_prekey: spk.key_pair.public,
            signed_prekey_signature: spk.signature.to_vec(),
            identity_key: *self.store.identity_key_pair()?.identity_key(),
        })
    }

    fn send(&mut self, to: &Device, text: &str) -> Result<CiphertextMessage> {
        let m = message_encrypt(&mut self.store, &to.addr, text.as_bytes())?;
        println!(
            "  {} -> {}: {:?} ({} bytes on the wire, {})",
            self.addr.name,
            to.addr.name,
            text,
            m.serialized().len(),
            if m.message_type() == 3 {
                "PreKeySignalMessage"
            } else {
                "SignalMessage"
            }
        );
        Ok(m)
    }

    fn receive(&mut self, from: &Device, m: &CiphertextMessage, expect: &str) -> Result<()> {
        let pt = message_decrypt(&mut self.store, &from.addr, m, &mut OsRng)?;
        let text = String::from_utf8(pt)?;
        if text != expect {
            return Err(
                format!("{} decrypted {text:?}, expected {expect:?}", self.addr.name).into(),
            );
        }
        println!("  {} <- {}: {:?}", self.addr.name, from.addr.name, text);
        Ok(())
    }
}

fn demo() -> Result<()> {
    println!(
        "Pawl {} demo: two devices, Signal protocol v3, in-memory stores",
        pawl_core::VERSION
    );
    let mut alice = Device::new("alice", "+14155550100")?;
    let mut bob = Device::new("bob", "+14155550199")?;

    println!("\n1. Alice fetches Bob's prekey bundle and starts a session (X3DH)");
    let bundle = bob.bundle()?;
    process_prekey_bundle(&mut alice.store, &bob.addr, &bundle, &mut OsRng)?;
    println!("  bundle signature verified; session created");

    println!("\n2. Messages both ways");
    let m = alice.send(&bob, "Hi Bob! This is end-to-end encrypted.")?;
    bob.receive(&alice, &m, "Hi Bob! This is end-to-end encrypted.")?;
    let r = bob.send(&alice, "Hi Alice, got it.")?;
    alice.receive(&bob, &r, "Hi Alice, got it.")?;

    println!("\n3. Out-of-order delivery and a replay");
    let ms: Vec<_> = ["one", "two", "three"]
        .iter()
        .map(|t| alice.send(&bob, t).map(|m| (t, m)))
        .collect::<Result<_>>()?;
    for i in [2, 0, 1] {
        bob.receive(&alice, &ms[i].1, ms[i].0)?;
    }
    match message_decrypt(&mut bob.store, &alice.addr, &ms[0].1, &mut OsRng) {
        Err(e @ SessionError::DuplicateMessage { .. }) => println!("  replay rejected: {e}"),
        other => return Err(format!("replay was not rejected: {other:?}").into()),
    }

    println!("\n4. A group message (sender keys)");
    let group = b"family-group";
    let skdm = create_sender_key_distribution_message(
        &mut alice.store.sender_keys,
        &alice.addr,
        group,
        &mut OsRng,
    )?;
    // The distribution message travels over the pairwise session.
    let carrier = alice.send(&bob, "<sender key distribution>")?;
    bob.receive(&alice, &carrier, "<sender key distribution>")?;
    process_sender_key_distribution_message(&mut bob.store.sender_keys, &alice.addr, group, &skdm)?;
    let gm = group_encrypt(
        &mut alice.store.sender_keys,
        &alice.addr,
        group,
        b"Dinner at 8?",
        &mut OsRng,
    )?;
    let pt = group_decrypt(
        &mut bob.store.sender_keys,
        &alice.addr,
        group,
        gm.serialized(),
    )?;
    println!(
        "  bob <- alice in group: {:?} (signed, {} bytes)",
        String::from_utf8(pt)?,
        gm.serialized().len()
    );

    println!("\n5. Safety number");
    let ai = *alice.store.identity_key_pair()?.identity_key();
    let bi = *bob.store.identity_key_pair()?.identity_key();
    let fa = Fingerprint::new(
        ScannableVersion::V2,
        DEFAULT_ITERATIONS,
        alice.phone.as_bytes(),
        &ai,
        bob.phone.as_bytes(),
        &bi,
    )?;
    let fb = Fingerprint::new(
        ScannableVersion::V2,
        DEFAULT_ITERATIONS,
        bob.phone.as_bytes(),
        &bi,
        alice.phone.as_bytes(),
        &ai,
    )?;
    let digits: Vec<String> = fa
        .displayable
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    for row in digits.chunks(4) {
        println!("  {}", row.join(" "));
    }
    println!("  Alice's code, for Bob to scan:");
    for line in fa.qr_code()?.to_terminal().lines() {
        println!("  {line}");
    }
    if fa.displayable != fb.displayable || !fb.compare_scanned(&fa.scannable)? {
        return Err("safety numbers do not match".into());
    }
    println!("  Bob scanned Alice's code: match (both see the same 60 digits)");
    println!(
        "\nDemo finished: every message decrypted, the replay was refused, safety numbers match."
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") | None => demo(),
        Some(other) => Err(format!("unknown command {other:?}; usage: pawl-chat demo").into()),
    };
    if let Err(e) = result {
        eprintln!("pawl-chat: {e}");
        std::process::exit(1);
    }
}
