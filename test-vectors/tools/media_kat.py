"""Known-answer vectors for Pawl's attachment encryption (core/src/media.rs), computed
with an independent implementation: Python's `cryptography` package (OpenSSL), from the
construction in protocol-facts.md section 3 (whatsmeow download.go/upload.go, Baileys
messages-media.ts):

    expanded  = HKDF-SHA256(IKM=mediaKey, salt=None, info="WhatsApp <X> Keys", L=112)
    iv, cipherKey, macKey = expanded[0:16], expanded[16:48], expanded[48:80]
    blob      = AES-256-CBC(cipherKey, iv, PKCS7(plaintext)) || HMAC-SHA256(macKey, iv || ct)[:10]

    python3 -m venv /tmp/v && /tmp/v/bin/pip install cryptography
    /tmp/v/bin/python test-vectors/tools/media_kat.py > test-vectors/media-kat.json
"""
import hashlib
import hmac
import json

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def blob_for(media_key: bytes, info: str, plaintext: bytes) -> bytes:
    expanded = HKDF(algorithm=hashes.SHA256(), length=112, salt=None, info=info.encode()).derive(media_key)
    iv, cipher_key, mac_key = expanded[:16], expanded[16:48], expanded[48:80]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    mac = hmac.new(mac_key, iv + ct, hashlib.sha256).digest()[:10]
    return ct + mac


CASES = [
    ("image, 0 bytes", "Image", "WhatsApp Image Keys", bytes(range(32)), b""),
    ("document, 15 bytes", "Document", "WhatsApp Document Keys", bytes([0x11] * 32), b"fifteen bytes!!"),
    ("audio, 16 bytes", "Audio", "WhatsApp Audio Keys", bytes(range(100, 132)), b"exactly 16 bytes"),
    ("video, 100 bytes", "Video", "WhatsApp Video Keys", bytes(range(200, 232)), bytes(i * 3 % 256 for i in range(100))),
    ("history, 1000 bytes", "History", "WhatsApp History Keys", hashlib.sha256(b"pawl").digest(), bytes(i % 251 for i in range(1000))),
    ("app state, 33 bytes", "AppState", "WhatsApp App State Keys", bytes([0xA5] * 32), b"x" * 33),
]

vectors = []
for name, kind, info, key, plain in CASES:
    blob = blob_for(key, info, plain)
    vectors.append({
        "name": name,
        "kind": kind,
        "info": info,
        "media_key": key.hex(),
        "plaintext": plain.hex(),
        "blob": blob.hex(),
        "file_sha256": hashlib.sha256(plain).hexdigest(),
        "file_enc_sha256": hashlib.sha256(blob).hexdigest(),
    })
print(json.dumps({
    "source": "computed by test-vectors/tools/media_kat.py with Python cryptography (OpenSSL), an implementation independent of Pawl's",
    "construction": "protocol-facts.md section 3 (WhatsApp media encryption)",
    "vectors": vectors,
}, indent=2))
