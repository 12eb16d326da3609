//! `pawl-chat`: Pawl's CLI client and scripted demo.
//!
//! * `pawl-chat demo` (the README's first command) starts a relay in this process on
//!   loopback (TLS with a fresh self-signed certificate that the clients pin, a
//!   temporary SQLite database), registers two users by phone number, and runs a
//!   conversation through it: messages both ways with delivery and read receipts, a
//!   typing indicator, one user offline and back (store and forward), and the safety
//!   number with its QR code.
//! * `pawl-chat --db alice.db --relay wss://HOST:PORT/v1/ws --cert relay.pem register +49...`
//!   then `verify +49... CODE`, then `chat`: an interactive client against a running
//!   `pawl-relay`, for a person with two terminals (see the README).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use pawl_core::client::{cert_fingerprint, Client, ClientConfig, Event, MediaMessage, TlsTrust};
use pawl_core::media::MediaKind;
use pawl_core::sqlite::messages::MessageStatus;
use pawl_relay::{EmbeddedRelay, Limits};
use tokio::sync::mpsc::UnboundedReceiver;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Pawl's command-line chat client.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The device's database (created if missing).
    #[arg(long, env = "PAWL_CHAT_DB", default_value = "pawl-chat.db")]
    db: PathBuf,
    /// File holding the database key (32 random bytes, created with mode 0600 if
    /// missing). Default: the database path + ".key".
    #[arg(long, env = "PAWL_CHAT_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// The relay: wss://HOST:PORT/v1/ws (or ws:// with --plain).
    #[arg(
        long,
        env = "PAWL_CHAT_RELAY",
        default_value = "wss://127.0.0.1:8787/v1/ws"
    )]
    relay: String,
    /// The relay's certificate (PEM) to pin, as written by `pawl-relay --tls-self-signed`.
    #[arg(long, env = "PAWL_CHAT_CERT")]
    cert: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The scripted end-to-end demo over an in-process relay (nothing to configure).
    Demo,
    /// Ask the relay for a verification code for PHONE.
    Register {
        /// E.164 number, e.g. +4915112345678.
        phone: String,
    },
    /// Register this device with the code received.
    Verify {
        /// E.164 number.
        phone: String,
        /// The code.
        code: String,
    },
    /// Interactive chat: type `/to +49...` to pick a contact, then text lines; `/read`
    /// marks the chat read; `/safety` shows the safety number; `/link CODE` links a
    /// companion (on the phone: paste what `pawl-chat link` shows), `/devices` lists
    /// this account's other devices, `/unlink N` removes one; `/group NAME +A,+B`
    /// creates a group and picks it, `/groups` lists groups, `/g N` picks one, `/add`,
    /// `/remove` and `/leave` change it; `/quit` leaves.
    Chat,
    /// On a new device: show a QR code to link this device to an account (scan or
    /// paste it into the phone's `/link`), wait until the phone links it.
    Link,
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pawl-chat: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(async {
        match args.command {
            None | Some(Command::Demo) => demo().await,
            Some(ref c) => interactive(&args, c).await,
        }
    });
    if let Err(e) = result {
        eprintln!("pawl-chat: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- the demo

struct User {
    name: &'static str,
    phone: &'static str,
    client: Client,
    events: UnboundedReceiver<Event>,
}

/// Wait (at most 10 s) for the first event `f` accepts, printing what else happens.
async fn wait_for<T>(
    u: &mut User,
    what: &str,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, u.events.recv()).await {
            Ok(Some(e)) => {
                if let Some(t) = f(&e) {
                    return Ok(t);
                }
            }
            Ok(None) => {
                return Err(format!("{}: event stream ended waiting for {what}", u.name).into())
            }
            Err(_) => return Err(format!("{}: timed out waiting for {what}", u.name).into()),
        }
    }
}

fn device_config(relay: &EmbeddedRelay, dir: &Path, name: &str) -> ClientConfig {
    // In an app the database key comes from the iOS Keychain / Android Keystore.
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    let key_path = dir.join(format!("{name}.key"));
    match std::fs::read(&key_path) {
        Ok(k) if k.len() == 32 => key.copy_from_slice(&k),
        _ => {
            let _ = std::fs::write(&key_path, key);
        }
    }
    let mut c = ClientConfig::new(dir.join(format!("{name}.db")), key, &relay.url);
    c.tls = Some(TlsTrust::PinnedCertSha256(relay.cert_sha256));
    c
}

async fn register(
    relay: &EmbeddedRelay,
    dir: &Path,
    name: &'static str,
    phone: &'static str,
) -> Result<User> {
    let (client, events) = Client::open(device_config(relay, dir, name))?;
    client.request_code(phone).await?;
    let code = relay
        .code_for(phone)
        .ok_or("the development code sender wrote no code")?;
    println!("  {name}: asked for a code for {phone}; the development sender wrote {code}");
    client.verify_code(phone, &code).await?;
    client.start();
    let mut u = User {
        name,
        phone,
        client,
        events,
    };
    wait_for(&mut u, "connection", |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await?;
    let n = wait_for(&mut u, "prekey upload", |e| match e {
        Event::PreKeysUploaded { count } => Some(*count),
        _ => None,
    })
    .await?;
    println!(
        "  {name}: registered as device 1 of {phone}, connected over TLS, {n} one-time prekeys uploaded (encrypted store {})",
        dir.join(format!("{name}.db")).display()
    );
    Ok(u)
}

async fn send(from: &mut User, to: &mut User, text: &str) -> Result<i64> {
    let id = from.client.send_text(to.phone, text).await?;
    wait_for(from, "sent", |e| {
        matches!(e, Event::Sent { message_id } if *message_id == id).then_some(())
    })
    .await?;
    let m = wait_for(to, "message", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await?;
    println!(
        "  {} <- {}: {:?}",
        to.name,
        from.name,
        m.text().unwrap_or("<binary>")
    );
    wait_for(from, "delivery receipt", |e| {
        matches!(e, Event::Delivered { message_id, .. } if *message_id == id).then_some(())
    })
    .await?;
    println!("  {}: delivered ✓✓", from.name);
    Ok(id)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

/// Alice sends an image (her safety-number QR code as a PNG) as an attachment: it is
/// encrypted while uploaded, the message carries its key and hashes and a thumbnail,
/// and Bob downloads, checks and decrypts it into a file.
async fn image(
    alice: &mut User,
    bob: &mut User,
    dir: &Path,
    qr: &pawl_core::fingerprint::QrCodeImage,
) -> Result<()> {
    let png = qr.to_png(8)?;
    let (w, h) = png_size(&png).ok_or("not a PNG")?;
    let attachment = alice
        .client
        .upload_attachment(MediaKind::Image, &png[..], |_| {})
        .await?;
    println!(
        "  alice: uploaded a {w}x{h} PNG ({} bytes) encrypted with a fresh media key (AES-256-CBC + HMAC); the relay stores only ciphertext",
        png.len()
    );
    let media = MediaMessage {
        attachment,
        mime_type: "image/png".into(),
        file_name: "alice-safety-code.png".into(),
        caption: "my safety code, as a picture".into(),
        thumbnail: qr.to_png(1)?,
        width: w,
        height: h,
    };
    alice.client.send_media(bob.phone, &media).await?;
    let m = wait_for(bob, "media message", |e| match e {
        Event::Message(m) if m.media.is_some() => Some(m.clone()),
        _ => None,
    })
    .await?;
    let got = MediaMessage::of(&m).ok_or("no media in the message")??;
    println!(
        "  bob <- alice: image {:?} ({}, {}x{}, {} bytes), caption {:?}, {}-byte thumbnail inside the message",
        got.file_name,
        got.mime_type,
        got.width,
        got.height,
        got.attachment.file_length,
        m.text().unwrap_or(""),
        got.thumbnail.len()
    );
    let path = dir.join("received.png");
    bob.client
        .download_attachment_to_file(&got.attachment, &path, |_| {})
        .await?;
    let received = std::fs::read(&path)?;
    if received != png || png_size(&received) != Some((w, h)) {
        return Err("the downloaded image differs".into());
    }
    println!(
        "  bob: downloaded, checked (blob SHA-256, MAC, file SHA-256) and decrypted to {}: identical {w}x{h} PNG",
        path.display()
    );
    Ok(())
}

async fn demo() -> Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "1. A relay in this process: loopback, TLS with a fresh self-signed certificate, SQLite"
    );
    let relay = EmbeddedRelay::start(dir.path(), Limits::default()).await?;
    let pin: String = relay
        .cert_sha256
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("  {} (clients pin sha256 {}…)", relay.url, &pin[..16]);

    println!("\n2. Two users register by phone number");
    let mut alice = register(&relay, dir.path(), "alice", "+14155550100").await?;
    let mut bob = register(&relay, dir.path(), "bob", "+14155550199").await?;

    println!("\n3. Messages both ways, with receipts");
    let first = send(
        &mut alice,
        &mut bob,
        "Hi Bob! This is end-to-end encrypted.",
    )
    .await?;
    bob.client.mark_read(alice.phone).await?;
    let by = wait_for(&mut alice, "read receipt", |e| match e {
        Event::Read { message_id, by } if *message_id == first => Some(by.clone()),
        _ => None,
    })
    .await?;
    println!("  alice: read by {by} (the receipt was end-to-end encrypted)");
    bob.client.set_typing(alice.phone, true).await?;
    wait_for(&mut alice, "typing", |e| {
        matches!(e, Event::Typing { started: true, .. }).then_some(())
    })
    .await?;
    println!("  alice: bob is typing… (ephemeral: never stored)");
    send(&mut bob, &mut alice, "Hi Alice, got it.").await?;

    println!("\n4. Bob goes offline; the relay keeps Alice's messages for him");
    bob.client.shutdown().await;
    drop(bob);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let texts = ["Are you there?", "Call me when you're back."];
    let mut ids = Vec::new();
    for t in texts {
        let id = alice.client.send_text("+14155550199", t).await?;
        wait_for(&mut alice, "sent", |e| {
            matches!(e, Event::Sent { message_id } if *message_id == id).then_some(())
        })
        .await?;
        println!("  alice -> bob: {t:?} (queued at the relay: sent ✓, not delivered)");
        ids.push(id);
    }
    let (client, events) = Client::open(device_config(&relay, dir.path(), "bob"))?;
    let mut bob = User {
        name: "bob",
        phone: "+14155550199",
        client,
        events,
    };
    bob.client.start();
    println!("  bob comes back online (store reopened)");
    for _ in texts {
        let m = wait_for(&mut bob, "queued message", |e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await?;
        println!(
            "  bob <- alice: {:?} (was waiting at the relay)",
            m.text().unwrap_or("")
        );
    }
    for id in &ids {
        wait_for(&mut alice, "delivery", |e| {
            matches!(e, Event::Delivered { message_id, .. } if message_id == id).then_some(())
        })
        .await?;
    }
    println!("  alice: both delivered ✓✓");

    println!("\n5. Safety number");
    let fa = alice.client.safety_number(bob.phone)?;
    let fb = bob.client.safety_number(alice.phone)?;
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

    println!("\n6. What the stores hold");
    let chat = bob.client.with_store(|s| s.chat_id(alice.phone))?;
    let history = bob.client.with_store(|s| s.latest_messages(chat, 10))?;
    let unread = bob.client.with_store(|s| s.unread_count(chat))?;
    println!(
        "  bob: {} messages with alice, {unread} unread",
        history.len()
    );
    let found = bob.client.with_store(|s| s.search("encrypted", 5))?;
    println!(
        "  bob: search \"encrypted\": {} hit(s): {:?}",
        found.len(),
        found.first().and_then(|m| m.text())
    );
    let statuses: Vec<MessageStatus> = ids
        .iter()
        .map(|id| {
            alice
                .client
                .with_store(|s| s.message(*id))
                .ok()
                .flatten()
                .map(|m| m.status)
                .unwrap_or(MessageStatus::Failed)
        })
        .collect();
    println!("  alice: the offline messages are {statuses:?}");

    println!("\n7. An image");
    image(&mut alice, &mut bob, dir.path(), &fa.qr_code()?).await?;

    println!("\n8. Alice links her desktop by scanning its QR code");
    let desktop = link_desktop(&relay, dir.path(), &mut alice, &mut bob).await?;

    println!("\n9. A group: Alice, Bob and Carol");
    let mut carol = register(&relay, dir.path(), "carol", "+14155550142").await?;
    group(&mut alice, &mut bob, &mut carol).await?;

    alice.client.shutdown().await;
    bob.client.shutdown().await;
    carol.client.shutdown().await;
    desktop.client.shutdown().await;
    relay.stop().await;
    println!("\nDemo finished: every message delivered once, receipts back, store-and-forward worked, safety numbers match, the image arrived intact, the desktop was linked, synced and unlinked, and the group's removed member read nothing after her removal.");
    Ok(())
}

/// Step 8: a companion shows a code, Alice's phone links it, history and messages
/// reach it, app state syncs both ways, and the phone unlinks it.
async fn link_desktop(
    relay: &EmbeddedRelay,
    dir: &Path,
    alice: &mut User,
    bob: &mut User,
) -> Result<User> {
    let mut cfg = device_config(relay, dir, "alice-desktop");
    cfg.platform = '7';
    let (client, events) = Client::open(cfg)?;
    let mut desktop = User {
        name: "alice-desktop",
        phone: alice.phone,
        client,
        events,
    };
    let mut linking = desktop.client.start_linking().await?;
    let code = linking.next_code().await.ok_or("no link code")?;
    let qr = code.qr()?;
    println!(
        "  alice-desktop: shows a link code ({} modules, valid {} s; it holds a link secret that never reaches the relay):",
        qr.width(),
        code.expires_at_ms.saturating_sub(now_ms()) / 1000
    );
    for line in qr.to_terminal().lines() {
        println!("  {line}");
    }
    let desktop_id = alice
        .client
        .link_device(&code.code, |req| {
            println!(
                "  alice (phone): scanned it: link a device with platform '{}' as device {}? yes",
                req.platform, req.device_id
            );
            true
        })
        .await?;
    let addr = linking.finished().await?;
    println!(
        "  alice-desktop: checked the phone's signatures and the link secret's MAC; now device {} of {}",
        addr.device_id, addr.name
    );
    desktop.client.start();
    wait_for(&mut desktop, "connection", |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await?;
    let n = wait_for(&mut desktop, "history", |e| match e {
        Event::HistorySynced { messages, .. } => Some(*messages),
        _ => None,
    })
    .await?;
    let chat = desktop.client.with_store(|s| s.chat_id(bob.phone))?;
    let total = desktop
        .client
        .with_store(|s| s.latest_messages(chat, 1000))?
        .len();
    println!("  alice-desktop: history from the phone: {n} message(s) imported, {total} in the chat with bob");

    bob.client
        .send_text(alice.phone, "Hello to all your devices")
        .await?;
    for u in [&mut *alice, &mut desktop] {
        let m = wait_for(u, "message", |e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await?;
        println!("  {} <- bob: {:?}", u.name, m.text().unwrap_or("<binary>"));
    }
    desktop
        .client
        .send_text(bob.phone, "Typed on my desktop")
        .await?;
    let m = wait_for(bob, "message", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await?;
    println!(
        "  bob <- alice (device {}): {:?}",
        m.sender_device,
        m.text().unwrap_or("")
    );
    let copy = wait_for(alice, "copy", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await?;
    println!(
        "  alice (phone): a copy of what the desktop sent to bob: {:?} ({:?})",
        copy.text().unwrap_or(""),
        copy.direction
    );
    desktop.client.mark_read(bob.phone).await?;
    desktop.client.set_archived(bob.phone, true).await?;
    // Each change is a patch; the phone applies them as the relay announces them.
    while !alice.client.chat_state(bob.phone)?.archived {
        wait_for(alice, "app state", |e| {
            matches!(e, Event::AppStateChanged { .. }).then_some(())
        })
        .await?;
    }
    let chat = alice.client.with_store(|s| s.chat_id(bob.phone))?;
    let unread = alice.client.with_store(|s| s.unread_count(chat))?;
    let state = alice.client.chat_state(bob.phone)?;
    println!(
        "  alice (phone): the desktop read and archived the chat: {unread} unread here, archived = {}",
        state.archived
    );

    alice.client.unlink_device(desktop_id).await?;
    println!("  alice (phone): unlinked device {desktop_id} (new signed device list, app-state key rotated)");
    bob.client
        .send_text(alice.phone, "Only your phone gets this")
        .await?;
    let m = wait_for(alice, "message", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await?;
    let bob_sees = bob.client.with_store(|s| s.devices(alice.phone))?;
    println!(
        "  alice (phone) <- bob: {:?}; bob now encrypts to alice's devices {bob_sees:?}",
        m.text().unwrap_or("")
    );
    Ok(desktop)
}

/// Step 9: Alice creates a group, everyone writes, Alice removes Carol, and what is
/// sent afterwards is encrypted under a new sender key Carol never gets.
async fn group(alice: &mut User, bob: &mut User, carol: &mut User) -> Result<()> {
    let g = alice
        .client
        .create_group("Weekend", &[bob.phone, carol.phone])
        .await?;
    println!(
        "  alice: created group \"{}\" with {} members (she is its admin); the membership travels pairwise-encrypted",
        g.name,
        g.members.len()
    );
    for u in [&mut *bob, &mut *carol] {
        let id = wait_for(u, "group", |e| match e {
            Event::GroupUpdated { group_id, .. } => Some(group_id.clone()),
            _ => None,
        })
        .await?;
        let info = u.client.group(&id)?.ok_or("group not stored")?;
        println!(
            "  {}: added to \"{}\" by its admin (members: {})",
            u.name,
            info.name,
            info.members.join(", ")
        );
    }
    async fn show(u: &mut User, group: &str) -> Result<()> {
        let m = wait_for(u, "group message", |e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await?;
        println!(
            "  {} <- {} in \"{group}\": {:?}",
            u.name,
            m.sender,
            m.text().unwrap_or("")
        );
        Ok(())
    }
    alice
        .client
        .send_group_text(&g.id, "Climbing on Saturday?")
        .await?;
    let me = alice.client.address()?;
    let first_chain = alice
        .client
        .with_store(|s| s.own_sender_chain(&me, &g.id))?;
    println!(
        "  alice -> group: one sender-key encryption; her key went to each member device in the same send"
    );
    show(bob, &g.name).await?;
    show(carol, &g.name).await?;
    bob.client.send_group_text(&g.id, "I'm in.").await?;
    show(alice, &g.name).await?;
    show(carol, &g.name).await?;

    alice
        .client
        .remove_group_members(&g.id, &[carol.phone])
        .await?;
    let id = wait_for(carol, "removal", |e| match e {
        Event::GroupUpdated { group_id, .. } => Some(group_id.clone()),
        _ => None,
    })
    .await?;
    let removed = !carol
        .client
        .group(&id)?
        .ok_or("group not stored")?
        .is_member(carol.phone);
    println!("  carol: removed from the group by its admin: {removed}");
    wait_for(bob, "removal", |e| {
        matches!(e, Event::GroupUpdated { .. }).then_some(())
    })
    .await?;
    alice
        .client
        .send_group_text(&g.id, "Just the two of us, then.")
        .await?;
    let chain = alice
        .client
        .with_store(|s| s.own_sender_chain(&me, &g.id))?;
    println!(
        "  alice -> group: sender key rotated (chain {} -> {}) before encrypting, given to bob only",
        first_chain.unwrap_or(0),
        chain.unwrap_or(0)
    );
    show(bob, &g.name).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let carol_chat = carol
        .client
        .group(&g.id)?
        .ok_or("group not stored")?
        .chat_id;
    let seen = carol
        .client
        .with_store(|s| s.latest_messages(carol_chat, 100))?;
    println!(
        "  carol: {} messages in the group, the last {:?}: nothing sent after her removal reached her",
        seen.len(),
        seen.first().and_then(|m| m.text()).unwrap_or("")
    );
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------- interactive

fn load_key(path: &Path) -> Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(k) if k.len() == 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&k);
            Ok(key)
        }
        Ok(_) => Err(format!("{}: not a 32-byte key", path.display()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            std::io::Write::write_all(&mut o.open(path)?, &key)?;
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display()).into()),
    }
}

fn pem_cert_sha256(path: &Path) -> Result<[u8; 32]> {
    let pem = std::fs::read_to_string(path)?;
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64_decode(b64.trim())
        .ok_or_else(|| format!("{}: not a PEM certificate", path.display()))?;
    Ok(cert_fingerprint(&der))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

async fn interactive(args: &Args, command: &Command) -> Result<()> {
    let key_file = args
        .key_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.key", args.db.display())));
    let mut config = ClientConfig::new(&args.db, load_key(&key_file)?, &args.relay);
    if let Some(cert) = &args.cert {
        config.tls = Some(TlsTrust::PinnedCertSha256(pem_cert_sha256(cert)?));
    }
    let (client, mut events) = Client::open(config)?;
    match command {
        Command::Demo => {} // run by main
        Command::Register { phone } => {
            client.request_code(phone).await?;
            println!("code requested for {phone}; then: pawl-chat ... verify {phone} CODE");
        }
        Command::Verify { phone, code } => {
            client.verify_code(phone, code).await?;
            println!("registered {phone}; now: pawl-chat ... chat");
        }
        Command::Link => {
            let mut linking = client.start_linking().await?;
            // A new code each time the last expires, until the phone has linked it.
            let finished = loop {
                match linking.next_code().await {
                    Some(code) => {
                        print!("{}", code.qr()?.to_terminal());
                        println!("link code (on the phone: /link {})", code.code);
                    }
                    None => break linking.finished().await?,
                }
            };
            println!(
                "linked as device {} of {}; now: pawl-chat ... chat",
                finished.device_id, finished.name
            );
        }
        Command::Chat => {
            let me = client.address()?;
            println!("{me}: /to +NUMBER picks a contact, lines are sent, /read, /safety, /link CODE, /devices, /unlink N, /quit");
            println!("  groups: /group NAME +A,+B creates one and picks it, /groups lists them, /g N picks one, /add +N, /remove +N, /leave");
            client.start();
            let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines().map_while(|l| l.ok()) {
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            });
            // The contact, or the group (its chat's peer and id), lines go to.
            let mut to: Option<String> = None;
            let mut group: Option<Vec<u8>> = None;
            loop {
                tokio::select! {
                    e = events.recv() => match e {
                        Some(Event::Message(m)) => match client.with_store(|s| s.group_of_chat(m.chat_id)).ok().flatten() {
                            Some(g) => println!("[{}] {}: {}", g.name, m.sender, m.text().unwrap_or("<binary>")),
                            None => println!("[{}] {}", m.sender, m.text().unwrap_or("<binary>")),
                        },
                        Some(Event::GroupUpdated { group_id, .. }) => {
                            if let Ok(Some(g)) = client.group(&group_id) {
                                let state = if g.is_member(&me.name) { "members" } else { "you were removed; members" };
                                println!("  (group \"{}\": {state} {})", g.name, g.members.join(", "));
                            }
                        }
                        Some(Event::Delivered { message_id, device }) => println!("  (#{message_id} delivered to {device})"),
                        Some(Event::Read { message_id, by }) => println!("  (#{message_id} read by {by})"),
                        Some(Event::Typing { from, started }) => println!("  ({from} {})", if started { "is typing" } else { "stopped typing" }),
                        Some(Event::Connected) => println!("  (connected)"),
                        Some(Event::Disconnected { reason }) => println!("  (disconnected: {reason}; reconnecting)"),
                        Some(Event::DecryptFailed { from, error }) => println!("  (a message from {from} could not be decrypted: {error})"),
                        Some(Event::Failed { reason, .. }) => println!("  (send failed: {reason})"),
                        Some(Event::DeviceLinked { device_id }) => println!("  (device {device_id} linked)"),
                        Some(Event::HistorySynced { chunks_done, chunks, messages }) => println!("  (history {chunks_done}/{chunks}: {messages} messages)"),
                        Some(Event::DeviceListRejected { user, reason }) => println!("  (refused a device of {user}: {reason})"),
                        Some(_) => {}
                        None => break,
                    },
                    l = lines.recv() => {
                        let Some(l) = l else { break };
                        let l = l.trim();
                        if l == "/quit" {
                            break;
                        } else if let Some(p) = l.strip_prefix("/to ") {
                            to = Some(p.trim().to_string());
                            group = None;
                            println!("  (talking to {})", p.trim());
                        } else if let Some(rest) = l.strip_prefix("/group ") {
                            let (name, members) = rest.rsplit_once(' ').unwrap_or((rest, ""));
                            let members: Vec<&str> = members.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
                            match client.create_group(name.trim(), &members).await {
                                Ok(g) => {
                                    println!("  (created group \"{}\" with {}; talking to it)", g.name, g.members.join(", "));
                                    to = Some(g.chat_peer());
                                    group = Some(g.id);
                                }
                                Err(e) => println!("  (not created: {e})"),
                            }
                        } else if l == "/groups" {
                            for (i, g) in client.groups()?.iter().enumerate() {
                                println!("  {i}: \"{}\" ({} members{})", g.name, g.members.len(), if g.is_member(&me.name) { "" } else { ", left" });
                            }
                        } else if let Some(n) = l.strip_prefix("/g ") {
                            match n.trim().parse::<usize>().ok().and_then(|i| client.groups().ok()?.into_iter().nth(i)) {
                                Some(g) => {
                                    println!("  (talking to group \"{}\")", g.name);
                                    to = Some(g.chat_peer());
                                    group = Some(g.id);
                                }
                                None => println!("  (/groups lists them; /g NUMBER)"),
                            }
                        } else if let (Some(rest), Some(id)) = (l.strip_prefix("/add ").or(l.strip_prefix("/remove ")), &group) {
                            let users: Vec<&str> = rest.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
                            let r = if l.starts_with("/add ") {
                                client.add_group_members(id, &users).await
                            } else {
                                client.remove_group_members(id, &users).await
                            };
                            match r {
                                Ok(g) => println!("  (group \"{}\": {})", g.name, g.members.join(", ")),
                                Err(e) => println!("  ({e})"),
                            }
                        } else if let (true, Some(id)) = (l == "/leave", &group) {
                            match client.leave_group(id).await {
                                Ok(g) => println!("  (left \"{}\")", g.name),
                                Err(e) => println!("  ({e})"),
                            }
                        } else if l == "/read" {
                            match &to {
                                Some(p) => println!("  ({} marked read)", client.mark_read(p).await?),
                                None => println!("  (/to +NUMBER first)"),
                            }
                        } else if let Some(code) = l.strip_prefix("/link ") {
                            match client.link_device(code.trim(), |r| {
                                println!("  (linking a device with platform '{}' as device {})", r.platform, r.device_id);
                                true
                            }).await {
                                Ok(d) => println!("  (device {d} linked; history and keys sent)"),
                                Err(e) => println!("  (not linked: {e})"),
                            }
                        } else if l == "/devices" {
                            println!("  (other devices of this account: {:?})", client.own_devices()?);
                        } else if let Some(n) = l.strip_prefix("/unlink ") {
                            match n.trim().parse::<u32>() {
                                Ok(d) => match client.unlink_device(d).await {
                                    Ok(()) => println!("  (device {d} unlinked)"),
                                    Err(e) => println!("  ({e})"),
                                },
                                Err(_) => println!("  (/unlink DEVICE-NUMBER)"),
                            }
                        } else if l == "/safety" {
                            match to.as_deref().map(|p| client.safety_number(p)) {
                                Some(Ok(f)) => {
                                    println!("  {}", f.displayable);
                                    print!("{}", f.qr_code()?.to_terminal());
                                }
                                Some(Err(e)) => println!("  ({e})"),
                                None => println!("  (/to +NUMBER first)"),
                            }
                        } else if !l.is_empty() {
                            if let Some(id) = &group {
                                match client.send_group_text(id, l).await {
                                    Ok(id) => println!("  (#{id} sent to the group)"),
                                    Err(e) => println!("  (not sent: {e})"),
                                }
                                continue;
                            }
                            match &to {
                                Some(p) => match client.send_text(p, l).await {
                                    Ok(id) => println!("  (#{id} sent)"),
                                    Err(e) => println!("  (not sent: {e})"),
                                },
                                None => println!("  (/to +NUMBER first)"),
                            }
                        }
                    }
                }
            }
            client.shutdown().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #[test]
    fn base64_decodes() {
        assert_eq!(super::base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(super::base64_decode("Zm8=").unwrap(), b"fo");
        assert!(super::base64_decode("Zm9v!").is_none());
    }
}
