//! `pawl-peer`: the JSON-lines interop peer (see `shared/design/interop-peer.md`).
//!
//! ```text
//! pawl-peer [--state FILE] serve          one JSON request per stdin line, one response per stdout line
//! pawl-peer [--state FILE] call '<json>'  a single request; exit status 1 if the response is not ok
//! ```
//!
//! Other Signal implementations drive it to check that sessions interoperate byte for
//! byte; Pawl's own tests run two of them against each other. The protocol is a public
//! test interface: keep it stable.

mod state;

use std::io::{BufRead, Write};

use serde_json::{json, Map, Value};

use pawl_core::keys::{PreKeyBundle, PublicKey};
use pawl_core::store::{IdentityKeyStore, PreKeyStore, SessionStore, SignedPreKeyStore};
use pawl_core::{
    message_decrypt, message_encrypt, process_prekey_bundle, CiphertextMessage, IdentityKey,
    PreKeySignalMessage, ProtocolAddress, SessionError, SignalMessage,
};
use state::Peer;

/// A failed request: the interop error code and a sentence.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn bad(message: impl Into<String>) -> Self {
        Failure {
            code: "BadRequest",
            message: message.into(),
        }
    }
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        Failure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<pawl_core::StoreError> for Failure {
    fn from(e: pawl_core::StoreError) -> Self {
        Failure {
            code: "BadRequest",
            message: e.to_string(),
        }
    }
}

type Res = Result<Map<String, Value>, Failure>;

fn field<'a>(req: &'a Value, name: &str) -> Result<&'a Value, Failure> {
    req.get(name)
        .ok_or_else(|| Failure::bad(format!("missing field `{name}`")))
}

fn str_field<'a>(req: &'a Value, name: &str) -> Result<&'a str, Failure> {
    field(req, name)?
        .as_str()
        .ok_or_else(|| Failure::bad(format!("`{name}` must be a string")))
}

fn u32_or(req: &Value, name: &str, default: u32) -> Result<u32, Failure> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Failure::bad(format!("`{name}` must be an unsigned 32-bit integer"))),
    }
}

fn hex_field(req: &Value, name: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(str_field(req, name)?)
        .map_err(|e| Failure::bad(format!("`{name}` is not hex: {e}")))
}

fn key_field(req: &Value, name: &str) -> Result<PublicKey, Failure> {
    PublicKey::from_bytes(&hex_field(req, name)?).map_err(|e| Failure {
        code: "InvalidKey",
        message: format!("`{name}`: {e}"),
    })
}

fn address(req: &Value) -> Result<ProtocolAddress, Failure> {
    Ok(ProtocolAddress::new(
        str_field(req, "peer")?,
        u32_or(req, "peer_device_id", 1)?,
    ))
}

fn plaintext(req: &Value, text: &str, hex_name: &str) -> Result<Option<Vec<u8>>, Failure> {
    if let Some(v) = req.get(text) {
        let s = v
            .as_str()
            .ok_or_else(|| Failure::bad(format!("`{text}` must be a string")))?;
        return Ok(Some(s.as_bytes().to_vec()));
    }
    if req.get(hex_name).is_some() {
        return Ok(Some(hex_field(req, hex_name)?));
    }
    Ok(None)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn type_name(t: u8) -> &'static str {
    if t == 3 {
        "PreKeySignalMessage"
    } else {
        "SignalMessage"
    }
}

fn parse_bundle(b: &Value) -> Result<PreKeyBundle, Failure> {
    let prekey = match (b.get("prekey_id"), b.get("prekey")) {
        (Some(id), Some(k)) if !id.is_null() && !k.is_null() => {
            Some((u32_or(b, "prekey_id", 0)?, key_field(b, "prekey")?))
        }
        _ => None,
    };
    Ok(PreKeyBundle {
        registration_id: u32_or(b, "registration_id", 0)?,
        device_id: u32_or(b, "device_id", 1)?,
        prekey,
        signed_prekey_id: u32_or(b, "signed_prekey_id", 0)?,
        signed_prekey: key_field(b, "signed_prekey")?,
        signed_prekey_signature: hex_field(b, "signed_prekey_signature")?,
        identity_key: IdentityKey::new(key_field(b, "identity_key")?),
    })
}

fn handle(peer: &mut Option<Peer>, req: &Value) -> Res {
    let cmd = str_field(req, "cmd")?;
    if cmd == "init" {
        let p = Peer::init(
            str_field(req, "name")?,
            u32_or(req, "device_id", 1)?,
            u32_or(req, "prekey_start", 1)?,
            u32_or(req, "prekey_count", 10)?,
            u32_or(req, "signed_prekey_id", 1)?,
        )
        .map_err(Failure::bad)?;
        let info = p.info();
        *peer = Some(p);
        return Ok(obj(info));
    }
    let p = peer
        .as_mut()
        .ok_or_else(|| Failure::bad("not initialized: send `init` first"))?;
    let mut rng = rand::rngs::OsRng;
    match cmd {
        "info" => Ok(obj(p.info())),
        "state" => Ok(obj(p.to_json())),
        "bundle" => {
            let prekey_id = match req.get("prekey_id") {
                None => p.lowest_unused_prekey(),
                Some(Value::Null) => None,
                Some(_) => Some(u32_or(req, "prekey_id", 0)?),
            };
            let spk_id = match req.get("signed_prekey_id") {
                None | Some(Value::Null) => p
                    .latest_signed_prekey_id()
                    .ok_or_else(|| Failure::bad("no signed prekey"))?,
                Some(_) => u32_or(req, "signed_prekey_id", 0)?,
            };
            let spk = p.store.get_signed_pre_key(spk_id)?.ok_or(Failure {
                code: "InvalidKeyId",
                message: format!("unknown signed prekey id {spk_id}"),
            })?;
            let mut out = json!({
                "registration_id": p.store.local_registration_id()?,
                "device_id": p.device_id,
                "identity_key": hex::encode(p.store.identity_key_pair()?.identity_key().serialize()),
                "signed_prekey_id": spk.id,
                "signed_prekey": hex::encode(spk.key_pair.public.serialize()),
                "signed_prekey_signature": hex::encode(spk.signature),
            });
            if let Some(id) = prekey_id {
                let pk = p.store.get_pre_key(id)?.ok_or(Failure {
                    code: "InvalidKeyId",
                    message: format!("unknown prekey id {id}"),
                })?;
                out["prekey_id"] = json!(id);
                out["prekey"] = json!(hex::encode(pk.key_pair.public.serialize()));
                p.handed_out.insert(id);
            }
            Ok(obj(out))
        }
        "process_bundle" => {
            let bundle = parse_bundle(field(req, "bundle")?)?;
            process_prekey_bundle(&mut p.store, &address(req)?, &bundle, &mut rng)?;
            Ok(obj(json!({ "session": true })))
        }
        "encrypt" => {
            let addr = address(req)?;
            let pt = plaintext(req, "plaintext", "plaintext_hex")?
                .ok_or_else(|| Failure::bad("missing `plaintext` or `plaintext_hex`"))?;
            if let Some(b) = req.get("bundle").filter(|b| !b.is_null()) {
                process_prekey_bundle(&mut p.store, &addr, &parse_bundle(b)?, &mut rng)?;
            }
            let m = message_encrypt(&mut p.store, &addr, &pt)?;
            Ok(obj(json!({
                "type": m.message_type(),
                "type_name": type_name(m.message_type()),
                "ciphertext": hex::encode(m.serialized()),
            })))
        }
        "decrypt" => {
            let addr = address(req)?;
            let ct = hex_field(req, "ciphertext")?;
            let reply = plaintext(req, "reply", "reply_hex")?;
            let msg = match req.get("type").filter(|t| !t.is_null()) {
                Some(t) => match t.as_u64() {
                    Some(3) => CiphertextMessage::PreKey(PreKeySignalMessage::parse(&ct)?),
                    Some(2) => CiphertextMessage::Signal(SignalMessage::parse(&ct)?),
                    _ => return Err(Failure::bad("`type` must be 2 or 3")),
                },
                // Absent: try 3, then 2.
                None => match PreKeySignalMessage::parse(&ct) {
                    Ok(m) => CiphertextMessage::PreKey(m),
                    Err(_) => CiphertextMessage::Signal(SignalMessage::parse(&ct)?),
                },
            };
            let t = msg.message_type();
            let pt = message_decrypt(&mut p.store, &addr, &msg, &mut rng)?;
            let mut out = json!({ "type": t, "plaintext_hex": hex::encode(&pt) });
            if let Ok(s) = std::str::from_utf8(&pt) {
                out["plaintext"] = json!(s);
            }
            if let Some(r) = reply {
                let m: CiphertextMessage = message_encrypt(&mut p.store, &addr, &r)?;
                out["reply"] =
                    json!({ "type": m.message_type(), "ciphertext": hex::encode(m.serialized()) });
            }
            Ok(obj(out))
        }
        "has_session" => {
            let rec = p.store.load_session(&address(req)?)?;
            let version = rec.as_ref().and_then(|r| r.session_version());
            Ok(obj(
                json!({ "session": version.is_some(), "version": version }),
            ))
        }
        "trust" => {
            let addr = address(req)?;
            if let Some(tofu) = req.get("trust_on_first_use").filter(|v| !v.is_null()) {
                let on = tofu
                    .as_bool()
                    .ok_or_else(|| Failure::bad("`trust_on_first_use` must be a boolean"))?;
                p.store.identities.set_trust_on_first_use(on);
            }
            match req.get("identity_key") {
                Some(Value::Null) => p.store.forget_identity(&addr)?,
                Some(_) => {
                    p.store
                        .save_identity(&addr, &IdentityKey::new(key_field(req, "identity_key")?))?;
                }
                None => {}
            }
            Ok(Map::new())
        }
        other => Err(Failure::bad(format!("unknown command `{other}`"))),
    }
}

/// Handle one line; returns the response and whether it is ok.
fn respond(peer: &mut Option<Peer>, line: &str, state_file: Option<&str>) -> (Value, bool) {
    let req: Value = match serde_json::from_str(line) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return (
                failure(None, Failure::bad("request must be a JSON object")),
                false,
            )
        }
        Err(e) => {
            return (
                failure(None, Failure::bad(format!("malformed JSON: {e}"))),
                false,
            )
        }
    };
    let id = req.get("id").cloned();
    // A panic must never take the peer down: report it as a failed request.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(peer, &req)))
        .unwrap_or_else(|_| {
            Err(Failure::bad(
                "internal error (panic) while handling the request",
            ))
        });
    match result {
        Ok(mut map) => {
            if let (Some(path), Some(p)) = (state_file, peer.as_ref()) {
                if let Err(e) = p.save(path) {
                    return (
                        failure(id, Failure::bad(format!("could not write state: {e}"))),
                        false,
                    );
                }
            }
            map.insert("ok".into(), json!(true));
            if let Some(id) = id {
                map.insert("id".into(), id);
            }
            (Value::Object(map), true)
        }
        Err(f) => (failure(id, f), false),
    }
}

fn failure(id: Option<Value>, f: Failure) -> Value {
    let mut v = json!({ "ok": false, "error": f.message, "error_code": f.code });
    if let Some(id) = id {
        v["id"] = id;
    }
    v
}

fn usage() -> ! {
    eprintln!("usage: pawl-peer [--state FILE] serve | pawl-peer [--state FILE] call '<json>'");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (state_file, rest) = match args.as_slice() {
        [flag, file, rest @ ..] if flag == "--state" => (Some(file.clone()), rest.to_vec()),
        rest => (None, rest.to_vec()),
    };
    let mut peer = match state_file.as_deref().map(Peer::load) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("pawl-peer: cannot read state: {e}");
            std::process::exit(2);
        }
        None => None,
    };
    match rest.as_slice() {
        [cmd] if cmd == "serve" => {
            let stdin = std::io::stdin();
            let mut out = std::io::stdout().lock();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let (resp, _) = respond(&mut peer, &line, state_file.as_deref());
                if writeln!(out, "{resp}").and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
        }
        [cmd, json] if cmd == "call" => {
            let (resp, ok) = respond(&mut peer, json, state_file.as_deref());
            println!("{resp}");
            std::process::exit(if ok { 0 } else { 1 });
        }
        _ => usage(),
    }
}
