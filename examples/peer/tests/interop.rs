//! Runs `pawl-peer serve` processes against each other over their JSON-lines
//! interface, exactly as another implementation would drive them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    name: String,
}

impl Peer {
    fn spawn(name: &str, state: Option<&std::path::Path>) -> Peer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pawl-peer"));
        if let Some(s) = state {
            cmd.arg("--state").arg(s);
        }
        let mut child = cmd
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn pawl-peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
            name: name.to_string(),
        }
    }

    fn init(name: &str, state: Option<&std::path::Path>) -> Peer {
        let mut p = Peer::spawn(name, state);
        let r = p.ok(json!({"cmd": "init", "name": name, "prekey_count": 20}));
        assert_eq!(r["name"], name);
        assert_eq!(r["prekeys"].as_array().unwrap().len(), 20);
        p
    }

    fn raw(&mut self, line: &str) -> Value {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut out = String::new();
        self.stdout.read_line(&mut out).unwrap();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad response line {out:?}: {e}"))
    }

    fn call(&mut self, req: Value) -> Value {
        self.raw(&req.to_string())
    }

    fn ok(&mut self, req: Value) -> Value {
        let r = self.call(req.clone());
        assert_eq!(r["ok"], true, "{}: {req} -> {r}", self.name);
        r
    }

    fn err(&mut self, req: Value) -> String {
        let r = self.call(req.clone());
        assert_eq!(
            r["ok"], false,
            "{}: expected failure for {req}, got {r}",
            self.name
        );
        assert!(r["error"].as_str().is_some_and(|s| !s.is_empty()));
        r["error_code"].as_str().unwrap().to_string()
    }

    fn bundle(&mut self, req: Value) -> Value {
        let mut r = self.ok(req);
        r.as_object_mut().unwrap().remove("ok");
        r
    }

    fn encrypt(&mut self, to: &str, text: &str) -> (u64, String) {
        let r = self.ok(json!({"cmd": "encrypt", "peer": to, "plaintext": text}));
        (
            r["type"].as_u64().unwrap(),
            r["ciphertext"].as_str().unwrap().to_string(),
        )
    }

    fn decrypt(&mut self, from: &str, m: &(u64, String)) -> Value {
        self.call(json!({"cmd": "decrypt", "peer": from, "type": m.0, "ciphertext": m.1}))
    }

    fn expect_plain(&mut self, from: &str, m: &(u64, String), text: &str) {
        let r = self.decrypt(from, m);
        assert_eq!(r["ok"], true, "{} decrypting {text:?}: {r}", self.name);
        assert_eq!(r["plaintext"], text);
        assert_eq!(r["plaintext_hex"], hex::encode(text));
    }

    fn quit(mut self) {
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success());
    }
}

/// Alice and Bob with a session from Alice's side (`with_prekey` decides the OTK).
fn setup(with_prekey: bool) -> (Peer, Peer) {
    let mut a = Peer::init("alice", None);
    let mut b = Peer::init("bob", None);
    let req = if with_prekey {
        json!({"cmd": "bundle"})
    } else {
        json!({"cmd": "bundle", "prekey_id": null})
    };
    let bundle = b.bundle(req);
    assert_eq!(bundle.get("prekey_id").is_some(), with_prekey);
    a.ok(json!({"cmd": "process_bundle", "peer": "bob", "bundle": bundle}));
    (a, b)
}

#[test]
fn out_of_order_prekey_messages_replay_and_tamper() {
    let (mut a, mut b) = setup(true);
    let ms: Vec<_> = (0..4).map(|i| a.encrypt("bob", &format!("m{i}"))).collect();
    assert!(ms.iter().all(|m| m.0 == 3));
    for i in [2, 0, 3, 1] {
        b.expect_plain("alice", &ms[i], &format!("m{i}"));
    }
    assert_eq!(
        b.err(json!({"cmd": "decrypt", "peer": "alice", "type": 3, "ciphertext": ms[1].1})),
        "DuplicateMessage"
    );
    // Absent type: tries 3, then 2.
    let r = b.ok(
        json!({"cmd": "decrypt", "peer": "alice", "ciphertext": a.encrypt("bob", "typeless").1}),
    );
    assert_eq!(r["type"], 3);
    // Reply turns the session: Bob answers with a SignalMessage.
    let r = b.ok(json!({"cmd": "decrypt", "peer": "alice", "ciphertext": a.encrypt("bob", "ask").1, "reply": "answer"}));
    assert_eq!(r["reply"]["type"], 2);
    a.expect_plain(
        "bob",
        &(2, r["reply"]["ciphertext"].as_str().unwrap().to_string()),
        "answer",
    );
    let m = a.encrypt("bob", "after");
    assert_eq!(m.0, 2);
    // Flip the last MAC byte, then a body byte.
    let mut bytes = hex::decode(&m.1).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    assert_eq!(
        b.err(
            json!({"cmd": "decrypt", "peer": "alice", "type": 2, "ciphertext": hex::encode(&bytes)})
        ),
        "InvalidMac"
    );
    bytes[n - 1] ^= 1;
    bytes[n - 14] ^= 0x40;
    assert_eq!(
        b.err(
            json!({"cmd": "decrypt", "peer": "alice", "type": 2, "ciphertext": hex::encode(&bytes)})
        ),
        "InvalidMac"
    );
    b.expect_plain("alice", &m, "after");
    assert_eq!(
        b.err(json!({"cmd": "decrypt", "peer": "alice", "type": 2, "ciphertext": m.1})),
        "DuplicateMessage"
    );
    let hs = a.ok(json!({"cmd": "has_session", "peer": "bob"}));
    assert_eq!(
        (hs["session"].clone(), hs["version"].clone()),
        (json!(true), json!(3))
    );
    let hs = a.ok(json!({"cmd": "has_session", "peer": "carol"}));
    assert_eq!(hs["session"], false);
    a.quit();
    b.quit();
}

#[test]
fn out_of_order_across_dh_ratchet_steps() {
    let (mut a, mut b) = setup(true);
    let first = a.encrypt("bob", "hello");
    b.expect_plain("alice", &first, "hello");
    let mut held = Vec::new();
    for round in 0..6 {
        let (from, to, fname, tname) = if round % 2 == 0 {
            (&mut b, &mut a, "bob", "alice")
        } else {
            (&mut a, &mut b, "alice", "bob")
        };
        let ms: Vec<_> = (0..3)
            .map(|i| {
                (
                    format!("r{round}m{i}"),
                    from.encrypt(tname, &format!("r{round}m{i}")),
                )
            })
            .collect();
        for (p, m) in &ms[1..] {
            to.expect_plain(fname, m, p);
        }
        held.push((round, ms[0].clone()));
    }
    for (round, (p, m)) in held {
        if round % 2 == 0 {
            a.expect_plain("bob", &m, &p);
        } else {
            b.expect_plain("alice", &m, &p);
        }
    }
}

#[test]
fn restart_with_state_mid_conversation() {
    let dir = std::env::temp_dir().join(format!("pawl-peer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (sa, sb) = (dir.join("alice.json"), dir.join("bob.json"));
    let _ = std::fs::remove_file(&sa);
    let _ = std::fs::remove_file(&sb);
    let mut a = Peer::init("alice", Some(&sa));
    let mut b = Peer::init("bob", Some(&sb));
    let bundle = b.bundle(json!({"cmd": "bundle"}));
    a.ok(json!({"cmd": "process_bundle", "peer": "bob", "bundle": bundle}));
    let m1 = a.encrypt("bob", "one");
    let held = a.encrypt("bob", "held across restart");
    b.expect_plain("alice", &m1, "one");
    let r = b.encrypt("alice", "two");
    a.expect_plain("bob", &r, "two");
    let info_before = b.ok(json!({"cmd": "info"}));
    a.quit();
    b.quit();
    // Both restart from their files.
    let mut a = Peer::spawn("alice", Some(&sa));
    let mut b = Peer::spawn("bob", Some(&sb));
    let info_after = b.ok(json!({"cmd": "info"}));
    assert_eq!(info_before["identity_key"], info_after["identity_key"]);
    assert_eq!(
        info_before["prekeys"], info_after["prekeys"],
        "consumed prekey stays consumed"
    );
    b.expect_plain("alice", &held, "held across restart");
    let m = a.encrypt("bob", "three");
    assert_eq!(m.0, 2);
    b.expect_plain("alice", &m, "three");
    assert_eq!(
        b.err(json!({"cmd": "decrypt", "peer": "alice", "type": 3, "ciphertext": m1.1})),
        "DuplicateMessage"
    );
    let st = b.ok(json!({"cmd": "state"}));
    assert!(st["identity_private"]
        .as_str()
        .is_some_and(|s| s.len() == 64));
    assert_eq!(st["sessions"].as_array().unwrap().len(), 1);
    a.quit();
    b.quit();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn four_hundred_randomly_interleaved_and_reordered() {
    let (mut a, mut b) = setup(true);
    let first = a.encrypt("bob", "start");
    b.expect_plain("alice", &first, "start");
    let mut rng = ChaCha20Rng::seed_from_u64(400);
    let mut to_a: Vec<(String, (u64, String))> = Vec::new();
    let mut to_b: Vec<(String, (u64, String))> = Vec::new();
    let (mut sent, mut delivered) = (0, 0);
    // Rounds of 8 random operations; leftovers are delivered shuffled at the end of
    // each round (Signal keeps 5 receiver chains: older messages are lost by design).
    while sent < 400 {
        for _ in 0..8 {
            match rng.gen_range(0..4) {
                0 => {
                    to_b.push((format!("a{sent}"), a.encrypt("bob", &format!("a{sent}"))));
                    sent += 1;
                }
                1 => {
                    to_a.push((format!("b{sent}"), b.encrypt("alice", &format!("b{sent}"))));
                    sent += 1;
                }
                2 if !to_b.is_empty() => {
                    let (p, m) = to_b.swap_remove(rng.gen_range(0..to_b.len()));
                    b.expect_plain("alice", &m, &p);
                    delivered += 1;
                }
                3 if !to_a.is_empty() => {
                    let (p, m) = to_a.swap_remove(rng.gen_range(0..to_a.len()));
                    a.expect_plain("bob", &m, &p);
                    delivered += 1;
                }
                _ => {}
            }
        }
        to_a.shuffle(&mut rng);
        to_b.shuffle(&mut rng);
        for (p, m) in to_b.drain(..) {
            b.expect_plain("alice", &m, &p);
            delivered += 1;
        }
        for (p, m) in to_a.drain(..) {
            a.expect_plain("bob", &m, &p);
            delivered += 1;
        }
    }
    assert_eq!(sent, delivered);
    assert!(sent >= 400);
}

#[test]
fn skip_limits() {
    let (mut a, mut b) = setup(true);
    let first = a.encrypt("bob", "x");
    b.expect_plain("alice", &first, "x");
    let r = b.encrypt("alice", "y");
    a.expect_plain("bob", &r, "y");
    // 2010 skipped: the 10 oldest keys are evicted (2000 kept per chain).
    let skipped: Vec<_> = (0..2010)
        .map(|i| a.encrypt("bob", &format!("s{i}")))
        .collect();
    let last = a.encrypt("bob", "last");
    b.expect_plain("alice", &last, "last");
    assert_eq!(
        b.err(json!({"cmd": "decrypt", "peer": "alice", "type": 2, "ciphertext": skipped[0].1})),
        "DuplicateMessage"
    );
    b.expect_plain("alice", &skipped[10], "s10");
    b.expect_plain("alice", &skipped[2009], "s2009");
    // A jump beyond the forward limit (25000) is rejected; the session goes on.
    let mut line = String::new();
    for i in 0..25_001 {
        line.clear();
        line.push_str(
            &json!({"cmd": "encrypt", "peer": "bob", "plaintext_hex": "", "id": i}).to_string(),
        );
        let r = a.raw(&line);
        assert_eq!(r["ok"], true);
    }
    let far = a.encrypt("bob", "far");
    assert_eq!(
        b.err(json!({"cmd": "decrypt", "peer": "alice", "type": 2, "ciphertext": far.1})),
        "InvalidMessage"
    );
    let reply = b.encrypt("alice", "still here");
    a.expect_plain("bob", &reply, "still here");
    let next = a.encrypt("bob", "next chain");
    b.expect_plain("alice", &next, "next chain");
}

#[test]
fn untrusted_identity() {
    let (mut a, mut b) = setup(true);
    let m = a.encrypt("bob", "hi");
    b.expect_plain("alice", &m, "hi");
    // Mallory claims to be alice towards bob.
    let mut mallory = Peer::init("mallory", None);
    let bundle = b.bundle(json!({"cmd": "bundle"}));
    mallory.ok(json!({"cmd": "process_bundle", "peer": "bob", "bundle": bundle}));
    let evil = mallory.encrypt("bob", "i am alice");
    assert_eq!(
        b.err(json!({"cmd": "decrypt", "peer": "alice", "ciphertext": evil.1})),
        "UntrustedIdentity"
    );
    // Bob now refuses unknown identities and pins alice's key explicitly.
    let carol_bundle = b.bundle(json!({"cmd": "bundle"}));
    let mut carol = Peer::init("carol", None);
    carol.ok(json!({"cmd": "process_bundle", "peer": "bob", "bundle": carol_bundle}));
    b.ok(json!({"cmd": "trust", "peer": "carol", "trust_on_first_use": false}));
    let c = carol.encrypt("bob", "hello from carol");
    assert_eq!(
        b.err(json!({"cmd": "decrypt", "peer": "carol", "ciphertext": c.1.clone()})),
        "UntrustedIdentity"
    );
    let ck = carol.ok(json!({"cmd": "info"}))["identity_key"].clone();
    b.ok(json!({"cmd": "trust", "peer": "carol", "identity_key": ck}));
    b.expect_plain("carol", &c, "hello from carol");
    // Forgetting alice's key lets the (accepted) new identity in: trust with null.
    b.ok(
        json!({"cmd": "trust", "peer": "alice", "identity_key": null, "trust_on_first_use": true}),
    );
    b.expect_plain("alice", &evil, "i am alice");
    // Alice sees bob's key change the other way round too.
    let mut bob2 = Peer::init("bob", None);
    let b2 = bob2.bundle(json!({"cmd": "bundle"}));
    assert_eq!(
        a.err(json!({"cmd": "process_bundle", "peer": "bob", "bundle": b2})),
        "UntrustedIdentity"
    );
}

#[test]
fn bad_signed_prekey_signature_and_no_one_time_prekey() {
    let mut a = Peer::init("alice", None);
    let mut b = Peer::init("bob", None);
    let mut bundle = b.bundle(json!({"cmd": "bundle", "prekey_id": null}));
    assert!(bundle.get("prekey_id").is_none());
    let good = bundle.clone();
    let mut sig = hex::decode(bundle["signed_prekey_signature"].as_str().unwrap()).unwrap();
    sig[0] ^= 1;
    bundle["signed_prekey_signature"] = json!(hex::encode(sig));
    assert_eq!(
        a.err(json!({"cmd": "process_bundle", "peer": "bob", "bundle": bundle})),
        "InvalidKey"
    );
    assert_eq!(
        a.ok(json!({"cmd": "has_session", "peer": "bob"}))["session"],
        false
    );
    // Setup without a one-time prekey.
    let r = a.ok(json!({"cmd": "encrypt", "peer": "bob", "plaintext": "no otk", "bundle": good}));
    assert_eq!(r["type"], 3);
    let prekeys_before = b.ok(json!({"cmd": "info"}))["prekeys"]
        .as_array()
        .unwrap()
        .len();
    let r = b.ok(json!({"cmd": "decrypt", "peer": "alice", "ciphertext": r["ciphertext"], "reply_hex": "00ff"}));
    assert_eq!(r["plaintext"], "no otk");
    assert_eq!(
        b.ok(json!({"cmd": "info"}))["prekeys"]
            .as_array()
            .unwrap()
            .len(),
        prekeys_before
    );
    let reply = (2, r["reply"]["ciphertext"].as_str().unwrap().to_string());
    let r = a.decrypt("bob", &reply);
    assert_eq!(r["plaintext_hex"], "00ff");
    assert!(
        r.get("plaintext").is_none(),
        "invalid UTF-8 has no `plaintext`"
    );
    // An unknown prekey id.
    assert_eq!(
        b.err(json!({"cmd": "bundle", "prekey_id": 9999})),
        "InvalidKeyId"
    );
}

#[test]
fn malformed_lines_keep_the_peer_serving() {
    let mut p = Peer::spawn("x", None);
    for line in [
        "not json",
        "[1,2]",
        "{}",
        r#"{"cmd":"info"}"#,
        r#"{"cmd":"nope"}"#,
        "\u{1}\u{2}{{{",
    ] {
        let r = p.raw(line);
        assert_eq!(r["ok"], false, "{line}");
        assert_eq!(r["error_code"], "BadRequest", "{line}");
    }
    let r = p.ok(json!({"cmd": "init", "name": "x", "id": 7}));
    assert_eq!(r["id"], 7, "id echoed");
    let r = p.call(json!({"cmd": "decrypt", "peer": "y", "ciphertext": "zz", "id": "q"}));
    assert_eq!(
        (r["ok"].clone(), r["error_code"].clone(), r["id"].clone()),
        (json!(false), json!("BadRequest"), json!("q"))
    );
    let r = p.call(json!({"cmd": "decrypt", "peer": "y", "ciphertext": "3300", "type": 2}));
    assert_eq!(r["error_code"], "InvalidMessage");
    let r = p.call(
        json!({"cmd": "decrypt", "peer": "y", "ciphertext": "2200000000000000000000", "type": 2}),
    );
    assert_eq!(r["error_code"], "LegacyMessage");
    let r = p.call(
        json!({"cmd": "decrypt", "peer": "y", "ciphertext": "4400000000000000000000", "type": 2}),
    );
    assert_eq!(r["error_code"], "InvalidVersion");
    let r = p.call(json!({"cmd": "encrypt", "peer": "y", "plaintext": "x"}));
    assert_eq!(r["error_code"], "NoSession");
    let r =
        p.call(json!({"cmd": "process_bundle", "peer": "y", "bundle": {"signed_prekey": "05"}}));
    assert_eq!(r["ok"], false);
    assert_eq!(p.ok(json!({"cmd": "info"}))["name"], "x", "still serving");
    p.quit();
}

#[test]
fn call_mode_exit_status() {
    let bin = env!("CARGO_BIN_EXE_pawl-peer");
    let ok = Command::new(bin)
        .args(["call", r#"{"cmd":"init","name":"z","prekey_count":1}"#])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let bad = Command::new(bin)
        .args(["call", r#"{"cmd":"info"}"#])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["error_code"], "BadRequest");
}
