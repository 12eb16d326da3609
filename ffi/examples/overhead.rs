//! The Rust side of the binding-overhead measurement: the same `pawl-ffi` calls the
//! Python benchmark (`bindings/python/bench.py`) makes, called directly.
//!
//! `cargo run -p pawl-ffi --example overhead [--release]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool

use std::time::Instant;

use pawl_ffi::PawlProtocol;

fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    // In-memory databases: disk flushes would drown the per-call cost in noise.
    let open = || PawlProtocol::open(":memory:".into(), vec![7; 32]).unwrap();
    let (alice, bob) = (open(), open());
    alice
        .process_prekey_bundle("bob".into(), 1, bob.prekey_bundle(1, Some(1)).unwrap())
        .unwrap();
    let first = alice.encrypt("bob".into(), 1, b"hi".to_vec()).unwrap();
    bob.decrypt("alice".into(), 1, first).unwrap();
    let reply = bob.encrypt("alice".into(), 1, b"yo".to_vec()).unwrap();
    alice.decrypt("bob".into(), 1, reply).unwrap();

    let n = 2000;
    let version = per_call(200_000, || {
        std::hint::black_box(pawl_ffi::version());
    });
    let sha = per_call(200_000, || {
        std::hint::black_box(pawl_ffi::cert_sha256(vec![1; 32]));
    });
    let plaintext = vec![b'x'; 100];
    let mut msgs = Vec::with_capacity(n as usize);
    let enc = per_call(n, || {
        msgs.push(alice.encrypt("bob".into(), 1, plaintext.clone()).unwrap())
    });
    let mut it = msgs.into_iter();
    let dec = per_call(n, || {
        bob.decrypt("alice".into(), 1, it.next().unwrap()).unwrap();
    });
    println!("rust  version()        {version:8.2} us/call");
    println!("rust  cert_sha256(32B) {sha:8.2} us/call");
    println!("rust  encrypt(100B)    {enc:8.2} us/call");
    println!("rust  decrypt(100B)    {dec:8.2} us/call");
}
