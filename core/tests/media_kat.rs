//! Known answers for attachment encryption (`test-vectors/media-kat.json`, computed by
//! `test-vectors/tools/media_kat.py` with Python's `cryptography`, independently of
//! Pawl): Pawl's blob must be byte-identical, and decrypts back under every check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use pawl_core::media::{decrypt, encrypt, MediaExpected, MediaKey, MediaKind};
use serde_json::Value;

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn kind(name: &str) -> MediaKind {
    match name {
        "Image" => MediaKind::Image,
        "Video" => MediaKind::Video,
        "Audio" => MediaKind::Audio,
        "Document" => MediaKind::Document,
        "History" => MediaKind::History,
        "AppState" => MediaKind::AppState,
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn blobs_match_an_independent_implementation() {
    let file: Value =
        serde_json::from_str(include_str!("../../test-vectors/media-kat.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 6);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let k = kind(v["kind"].as_str().unwrap());
        assert_eq!(k.info(), v["info"].as_str().unwrap(), "{name}");
        let key = MediaKey::from_slice(&hx(&v["media_key"])).unwrap();
        let plain = hx(&v["plaintext"]);
        let (blob, digest) = encrypt(&key, k, &plain);
        assert_eq!(hex::encode(&blob), v["blob"].as_str().unwrap(), "{name}");
        assert_eq!(digest.file_sha256.to_vec(), hx(&v["file_sha256"]), "{name}");
        assert_eq!(
            digest.file_enc_sha256.to_vec(),
            hx(&v["file_enc_sha256"]),
            "{name}"
        );
        let expected = MediaExpected {
            file_sha256: digest.file_sha256,
            file_enc_sha256: digest.file_enc_sha256,
            file_length: Some(plain.len() as u64),
        };
        assert_eq!(
            decrypt(&key, k, &hx(&v["blob"]), &expected).unwrap(),
            plain,
            "{name}"
        );
    }
}
