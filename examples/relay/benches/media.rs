//! Attachment streaming benchmark: a file is encrypted while it is uploaded to a relay
//! (a separate process, so its memory is not counted), downloaded and decrypted by a
//! second client into a file; reports time and the client process's peak memory.
//!
//! cargo bench -p pawl-relay --bench media -- --mib 1024     # the 1 GiB measurement
//! cargo bench -p pawl-relay --bench media                   # 1024 MiB by default
//!
//! Under `cargo test` (no `--bench` argument) it runs with 8 MiB as a smoke test: the
//! round trip must be byte-identical and peak memory growth under 64 MiB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measurement tool

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pawl_core::client::{Client, ClientConfig, Event, TlsTrust};
use pawl_core::media::MediaKind;
use pawl_relay::{EmbeddedRelay, Limits};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedReceiver;

/// The child: a relay accepting blobs up to 4 GiB, until stdin closes.
fn relay_child(dir: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let limits = Limits {
            max_blob: 4 << 30,
            ..Limits::default()
        };
        let relay = EmbeddedRelay::start(Path::new(dir), limits).await.unwrap();
        println!("{} {}", relay.url, hex(&relay.cert_sha256));
        std::io::stdout().flush().unwrap();
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await;
        relay.stop().await;
    });
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

mod common;
use common::{reset_peak, rss_kib};

async fn connected(
    dir: &Path,
    url: &str,
    pin: [u8; 32],
    code_dir: &Path,
    name: &str,
    phone: &str,
) -> (Client, UnboundedReceiver<Event>) {
    let mut c = ClientConfig::new(dir.join(format!("{name}.db")), [3; 32], url);
    c.tls = Some(TlsTrust::PinnedCertSha256(pin));
    let (client, mut ev) = Client::open(c).unwrap();
    client.request_code(phone).await.unwrap();
    let code = std::fs::read_to_string(code_dir.join(format!("{phone}.code"))).unwrap();
    client.verify_code(phone, code.trim()).await.unwrap();
    client.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client.is_connected() {
        assert!(Instant::now() < deadline, "{name} did not connect");
        let _ = tokio::time::timeout(Duration::from_millis(100), ev.recv()).await;
    }
    (client, ev)
}

fn main() {
    if let Ok(dir) = std::env::var("PAWL_MEDIA_BENCH_RELAY") {
        return relay_child(&dir);
    }
    let mib: u64 = common::arg("--mib", 1024, 8);
    let size = mib << 20;
    let dir = tempfile::tempdir().unwrap();

    // The relay in its own process.
    let relay_dir = dir.path().join("relay");
    std::fs::create_dir_all(&relay_dir).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("PAWL_MEDIA_BENCH_RELAY", &relay_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut parts = line.split_whitespace();
    let url = parts.next().expect("relay url").to_string();
    let pin = unhex32(parts.next().expect("relay pin"));
    let code_dir = relay_dir.join("codes");

    // The plaintext file (deterministic, not compressible), and its hash.
    let input = dir.path().join("input.bin");
    let mut hasher = Sha256::new();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let mut chunk = vec![0u8; 1 << 20];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..mib {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            hasher.update(&chunk);
            f.write_all(&chunk).unwrap();
        }
    }
    let input_sha: [u8; 32] = hasher.finalize().into();

    common::block_on(async {
        let (alice, _a) =
            connected(dir.path(), &url, pin, &code_dir, "alice", "+4915100000091").await;
        let (bob, _b) = connected(dir.path(), &url, pin, &code_dir, "bob", "+4915100000092").await;
        let (rss0, _) = rss_kib();
        reset_peak();

        let t = Instant::now();
        let mut reports = 0u32;
        let file = std::fs::File::open(&input).unwrap();
        let att = alice
            .upload_attachment(MediaKind::Video, file, |_| reports += 1)
            .await
            .unwrap();
        let up = t.elapsed();
        let (_, peak_up) = rss_kib();
        assert_eq!(att.file_length, size);
        assert_eq!(att.file_sha256, input_sha);

        let output = dir.path().join("output.bin");
        let t = Instant::now();
        bob.download_attachment_to_file(&att, &output, |_| {})
            .await
            .unwrap();
        let down = t.elapsed();
        let (_, peak) = rss_kib();

        // Independent check of the result: hash the output file.
        let mut h = Sha256::new();
        let mut f = std::fs::File::open(&output).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        assert_eq!(
            <[u8; 32]>::from(h.finalize()),
            input_sha,
            "round trip differs"
        );

        let growth_mib = peak.saturating_sub(rss0) as f64 / 1024.0;
        println!(
            "media: {mib} MiB; upload (encrypt+send) {:.1} s = {:.0} MiB/s, {reports} progress reports; \
             download (fetch+decrypt+verify) {:.1} s = {:.0} MiB/s",
            up.as_secs_f64(),
            mib as f64 / up.as_secs_f64(),
            down.as_secs_f64(),
            mib as f64 / down.as_secs_f64(),
        );
        println!(
            "media: client process RSS before {:.1} MiB; peak after the upload {:.1} MiB, after upload and download {:.1} MiB; peak growth {growth_mib:.1} MiB",
            rss0 as f64 / 1024.0,
            peak_up as f64 / 1024.0,
            peak as f64 / 1024.0,
        );
        assert!(growth_mib < 64.0, "peak memory grew by {growth_mib:.1} MiB");
        alice.shutdown().await;
        bob.shutdown().await;
    });
    drop(child.stdin.take());
    let _ = child.wait();
}
