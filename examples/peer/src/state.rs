//! The peer's state: one device's keys, sessions and trusted identities, kept in
//! memory and, with `--state FILE`, persisted as JSON (written atomically: a temporary
//! file renamed over the old one) after each successful request.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use pawl_core::keys::{
    generate_registration_id, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord,
};
use pawl_core::store::{
    IdentityKeyStore, InMemProtocolStore, PreKeyStore, SessionStore, SignedPreKeyStore,
};
use pawl_core::{IdentityKey, PrivateKey, ProtocolAddress, SessionRecord};

const FORMAT: u64 = 1;

pub(crate) struct Peer {
    pub(crate) name: String,
    pub(crate) device_id: u32,
    pub(crate) store: InMemProtocolStore,
    /// Prekey ids already handed out in a bundle (not offered again by default).
    pub(crate) handed_out: BTreeSet<u32>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn hx(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = v
        .get(name)
        .and_then(Value::as_str)
        .ok_or(format!("state: missing `{name}`"))?;
    hex::decode(s).map_err(|e| format!("state: `{name}`: {e}"))
}

fn num(v: &Value, name: &str) -> Result<u32, String> {
    v.get(name)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(format!("state: missing or bad `{name}`"))
}

impl Peer {
    pub(crate) fn init(
        name: &str,
        device_id: u32,
        prekey_start: u32,
        prekey_count: u32,
        signed_prekey_id: u32,
    ) -> Result<Self, String> {
        if prekey_count > 10_000 {
            return Err("prekey_count must be at most 10000".into());
        }
        let mut rng = rand::rngs::OsRng;
        let identity = IdentityKeyPair::generate(&mut rng);
        let mut store =
            InMemProtocolStore::new(identity.clone(), generate_registration_id(&mut rng));
        let spk = SignedPreKeyRecord::generate(signed_prekey_id, now_ms(), &identity, &mut rng);
        store.save_signed_pre_key(&spk).map_err(|e| e.to_string())?;
        for i in 0..prekey_count {
            let id = prekey_start.checked_add(i).ok_or("prekey ids overflow")?;
            store
                .save_pre_key(&PreKeyRecord::generate(id, &mut rng))
                .map_err(|e| e.to_string())?;
        }
        Ok(Peer {
            name: name.to_string(),
            device_id,
            store,
            handed_out: BTreeSet::new(),
        })
    }

    pub(crate) fn lowest_unused_prekey(&self) -> Option<u32> {
        self.store
            .pre_keys
            .ids()
            .into_iter()
            .find(|id| !self.handed_out.contains(id))
    }

    pub(crate) fn latest_signed_prekey_id(&self) -> Option<u32> {
        self.store.signed_pre_keys.ids().into_iter().max()
    }

    /// Signed prekeys, ascending by id.
    fn signed_prekeys(&self) -> Vec<SignedPreKeyRecord> {
        let s = &self.store;
        s.signed_pre_keys
            .ids()
            .into_iter()
            .filter_map(|i| s.get_signed_pre_key(i).ok().flatten())
            .collect()
    }

    /// One-time prekeys still present, ascending by id.
    fn prekeys(&self) -> Vec<PreKeyRecord> {
        let s = &self.store;
        s.pre_keys
            .ids()
            .into_iter()
            .filter_map(|i| s.get_pre_key(i).ok().flatten())
            .collect()
    }

    fn sessions(&self) -> Vec<(ProtocolAddress, SessionRecord)> {
        let mut v: Vec<_> = self
            .store
            .sessions
            .addresses()
            .filter_map(|a| {
                self.store
                    .load_session(a)
                    .ok()
                    .flatten()
                    .map(|r| (a.clone(), r))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub(crate) fn info(&self) -> Value {
        let id = self
            .store
            .identity_key_pair()
            .map(|k| hex::encode(k.identity_key().serialize()))
            .unwrap_or_default();
        let spks: Vec<Value> = self
            .signed_prekeys()
            .into_iter()
            .map(|s| {
                json!({"id": s.id, "public_key": hex::encode(s.key_pair.public.serialize()),
                       "signature": hex::encode(s.signature), "timestamp": s.timestamp})
            })
            .collect();
        let pks: Vec<Value> = self
            .prekeys()
            .into_iter()
            .map(|p| json!({"id": p.id, "public_key": hex::encode(p.key_pair.public.serialize())}))
            .collect();
        let sessions: Vec<Value> = self
            .sessions()
            .iter()
            .map(|(a, r)| json!({"peer": a.name, "peer_device_id": a.device_id, "version": r.session_version()}))
            .collect();
        json!({
            "name": self.name,
            "device_id": self.device_id,
            "registration_id": self.store.local_registration_id().unwrap_or(0),
            "identity_key": id,
            "signed_prekeys": spks,
            "prekeys": pks,
            "sessions": sessions,
        })
    }

    pub(crate) fn to_json(&self) -> Value {
        let ikp = self.store.identity_key_pair().ok();
        let spks: Vec<Value> = self
            .signed_prekeys()
            .into_iter()
            .map(|s| json!({"id": s.id, "record": hex::encode(s.serialize())}))
            .collect();
        let pks: Vec<Value> = self
            .prekeys()
            .into_iter()
            .map(|p| json!({"id": p.id, "record": hex::encode(p.serialize())}))
            .collect();
        let sessions: Vec<Value> = self
            .sessions()
            .iter()
            .map(|(a, r)| json!({"peer": a.name, "peer_device_id": a.device_id, "record": hex::encode(r.serialize())}))
            .collect();
        let mut ids: Vec<_> = self.store.identities.known_identities().collect();
        ids.sort_by(|a, b| a.0.cmp(b.0));
        let identities: Vec<Value> = ids
            .into_iter()
            .map(|(a, k)| json!({"peer": a.name, "peer_device_id": a.device_id, "identity_key": hex::encode(k.serialize())}))
            .collect();
        json!({
            "format": FORMAT,
            "name": self.name,
            "device_id": self.device_id,
            "registration_id": self.store.local_registration_id().unwrap_or(0),
            "identity_key": ikp.as_ref().map(|k| hex::encode(k.identity_key().serialize())),
            "identity_private": ikp.as_ref().map(|k| hex::encode(k.private_key().to_bytes())),
            "trust_on_first_use": self.store.identities.trust_on_first_use(),
            "signed_prekeys": spks,
            "prekeys": pks,
            "handed_out": self.handed_out.iter().collect::<Vec<_>>(),
            "sessions": sessions,
            "identities": identities,
        })
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        if v.get("format").and_then(Value::as_u64) != Some(FORMAT) {
            return Err("state: unknown format".into());
        }
        let private =
            PrivateKey::from_bytes(&hx(v, "identity_private")?).map_err(|e| e.to_string())?;
        let identity = IdentityKeyPair::from_private(private);
        let mut store = InMemProtocolStore::new(identity, num(v, "registration_id")?);
        store.identities.set_trust_on_first_use(
            v.get("trust_on_first_use")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        );
        let list = |name: &str| {
            v.get(name)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for s in list("signed_prekeys") {
            let r =
                SignedPreKeyRecord::deserialize(&hx(&s, "record")?).map_err(|e| e.to_string())?;
            store.save_signed_pre_key(&r).map_err(|e| e.to_string())?;
        }
        for p in list("prekeys") {
            let r = PreKeyRecord::deserialize(&hx(&p, "record")?).map_err(|e| e.to_string())?;
            store.save_pre_key(&r).map_err(|e| e.to_string())?;
        }
        for s in list("sessions") {
            let addr = ProtocolAddress::new(
                s.get("peer").and_then(Value::as_str).unwrap_or(""),
                num(&s, "peer_device_id")?,
            );
            let r = SessionRecord::deserialize(&hx(&s, "record")?).map_err(|e| e.to_string())?;
            store.store_session(&addr, &r).map_err(|e| e.to_string())?;
        }
        for i in list("identities") {
            let addr = ProtocolAddress::new(
                i.get("peer").and_then(Value::as_str).unwrap_or(""),
                num(&i, "peer_device_id")?,
            );
            let k = IdentityKey::from_bytes(&hx(&i, "identity_key")?).map_err(|e| e.to_string())?;
            store.save_identity(&addr, &k).map_err(|e| e.to_string())?;
        }
        let handed_out = list("handed_out")
            .iter()
            .filter_map(Value::as_u64)
            .filter_map(|n| u32::try_from(n).ok())
            .collect();
        Ok(Peer {
            name: v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            device_id: num(v, "device_id")?,
            store,
            handed_out,
        })
    }

    /// Load from `path`; `Ok(None)` if the file does not exist yet.
    pub(crate) fn load(path: &str) -> Result<Option<Self>, String> {
        match std::fs::read_to_string(path) {
            Ok(s) => {
                let v: Value = serde_json::from_str(&s).map_err(|e| format!("{path}: {e}"))?;
                Peer::from_json(&v).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{path}: {e}")),
        }
    }

    /// Write atomically: temporary file in the same directory, fsync, rename.
    pub(crate) fn save(&self, path: &str) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = format!("{path}.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.to_json().to_string().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}
