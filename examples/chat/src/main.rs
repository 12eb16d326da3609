//! `pawl-chat`: Pawl's CLI client and scripted demo.
//!
//! `pawl-chat demo` is the README's first command. Today it runs two devices in one
//! process, each on its own encrypted SQLite store in a temporary directory; the relay
//! and the interactive client arrive with later issues and plug in behind it.

use rand::rngs::OsRng;

use pawl_core::fingerprint::{Fingerprint, ScannableVersion, DEFAULT_ITERATIONS};
use pawl_core::keys::{
    generate_registration_id, IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord,
};
use pawl_core::sqlite::messages::{Envelope, Received};
use pawl_core::sqlite::SqliteStore;
use pawl_core::store::{IdentityKeyStore, PreKeyStore, SignedPreKeyStore};
use pawl_core::*;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// An envelope as it would travel: (id, type, bytes).
type Wire = (Vec<u8>, u8, Vec<u8>);

struct Device {
    addr: ProtocolAddress,
    phone: String,
    store: SqliteStore,
    sent: u32,
}

impl Device {
    fn new(dir: &std::path::Path, name: &str, phone: &str) -> Result<Self> {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        // In an app the key comes from the iOS Keychain / Android Keystore.
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut OsRng, &mut key);
        let path = dir.join(format!("{name}.db"));
        let mut store = SqliteStore::open(&path, Some(&key))?;
        store.set_local_identity(&identity, generate_registration_id(&mut OsRng))?;
        store.save_signed_pre_key(&SignedPreKeyRecord::generate(1, 0, &identity, &mut OsRng))?;
        for id in 1..=5 {
            store.save_pre_key(&PreKeyRecord::generate(id, &mut OsRng))?;
        }
        println!("  {name}: encrypted store {}", path.display());
        Ok(Device {
            addr: ProtocolAddress::new(name, 1),
            phone: phone.into(),
            store,
            sent: 0,
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

    /// Encrypt and store the message with its outbox entry in one transaction.
    fn send(&mut self, to: &Device, text: &str) -> Result<Wire> {
        let (_, out) = self.store.send(&to.addr, text.as_bytes(), 0)?;
        self.store.ack_outbox(out.id)?; // no relay yet: handed over in-process
        self.sent += 1;
        let kind = if out.message_type == 3 {
            "PreKeySignalMessage"
        } else {
            "SignalMessage"
        };
        println!(
            "  {} -> {}: {text:?} ({} bytes on the wire, {kind})",
            self.addr.name,
            to.addr.name,
            out.payload.len()
        );
        Ok((
            format!("{}-{}", self.addr.name, self.sent).into_bytes(),
            out.message_type,
            out.payload,
        ))
    }

    /// Decrypt and store in one transaction, then show the message.
    fn receive(&mut self, from: &Device, m: &Wire, expect: &str) -> Result<()> {
        let env = Envelope {
            id: &m.0,
            message_type: m.1,
            ciphertext: &m.2,
            sent_at: 0,
        };
        let stored = match self.store.receive(&from.addr, &env, 0, &mut OsRng)? {
            Received::New(s) => s,
            _ => return Err("unexpected duplicate or control message".into()),
        };
        let text = stored.text().ok_or("not UTF-8")?;
        if text != expect {
            return Err(
                format!("{} decrypted {text:?}, expected {expect:?}", self.addr.name).into(),
            );
        }
        println!("  {} <- {}: {text:?}", self.addr.name, from.addr.name);
        Ok(())
    }
}

fn demo() -> Result<()> {
    println!(
        "Pawl {} demo: two devices, Signal protocol v3, encrypted SQLite stores",
        pawl_core::VERSION
    );
    let dir = std::env::temp_dir().join(format!("pawl-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(dir: &std::path::Path) -> Result<()> {
    let mut alice = Device::new(dir, "alice", "+14155550100")?;
    let mut bob = Device::new(dir, "bob", "+14155550199")?;

    println!("\n1. Alice fetches Bob's prekey bundle and starts a session (X3DH)");
    let bundle = bob.bundle()?;
    process_prekey_bundle(&mut alice.store, &bob.addr, &bundle, &mut OsRng)?;
    println!("  bundle signature verified; session created");

    println!("\n2. Messages both ways");
    let m = alice.send(&bob, "Hi Bob! This is end-to-end encrypted.")?;
    bob.receive(&alice, &m, "Hi Bob! This is end-to-end encrypted.")?;
    let r = bob.send(&alice, "Hi Alice, got it.")?;
    alice.receive(&bob, &r, "Hi Alice, got it.")?;

    println!("\n3. Out-of-order delivery, a redelivery and a replay");
    let texts = ["one", "two", "three"];
    let ms: Vec<Wire> = texts
        .iter()
        .map(|t| alice.send(&bob, t))
        .collect::<Result<_>>()?;
    for i in [2, 0, 1] {
        bob.receive(&alice, &ms[i], texts[i])?;
    }
    let (id, t, ct) = &ms[0];
    if let Received::Duplicate { .. } = bob.store.receive(
        &alice.addr,
        &Envelope {
            id,
            message_type: *t,
            ciphertext: ct,
            sent_at: 0,
        },
        0,
        &mut OsRng,
    )? {
        println!("  redelivered envelope recognised: stored once, not decrypted again");
    }
    match bob.store.receive(
        &alice.addr,
        &Envelope {
            id: b"a-new-id",
            message_type: *t,
            ciphertext: ct,
            sent_at: 0,
        },
        0,
        &mut OsRng,
    ) {
        Err(e @ SessionError::DuplicateMessage { .. }) => println!("  replay rejected: {e}"),
        other => return Err(format!("replay was not rejected: {other:?}").into()),
    }

    println!("\n4. A group message (sender keys)");
    let group = b"family-group";
    let skdm =
        create_sender_key_distribution_message(&mut alice.store, &alice.addr, group, &mut OsRng)?;
    let carrier = message_encrypt(&mut alice.store, &bob.addr, skdm.serialized())?;
    println!(
        "  alice -> bob: sender key distribution over the pairwise session ({} bytes)",
        carrier.serialized().len()
    );
    let skdm_bytes = message_decrypt(&mut bob.store, &alice.addr, &carrier, &mut OsRng)?;
    process_sender_key_distribution_message(
        &mut bob.store,
        &alice.addr,
        group,
        &SenderKeyDistributionMessage::parse(&skdm_bytes)?,
    )?;
    let gm = group_encrypt(
        &mut alice.store,
        &alice.addr,
        group,
        b"Dinner at 8?",
        &mut OsRng,
    )?;
    let pt = group_decrypt(&mut bob.store, &alice.addr, group, gm.serialized())?;
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

    println!("\n6. Bob's message store");
    let chat = bob.store.chat_id(&alice.addr.name)?;
    let history = bob.store.latest_messages(chat, 10)?;
    println!(
        "  {} messages in the chat with alice, {} unread",
        history.len(),
        bob.store.unread_count(chat)?
    );
    let found = bob.store.search("encrypted", 5)?;
    println!(
        "  search \"encrypted\": {} hit(s): {:?}",
        found.len(),
        found.first().and_then(|m| m.text())
    );
    println!("\nDemo finished: every message decrypted and stored, the replay was refused, safety numbers match.");
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
