//! The interactive client against a `pawl-relay` process, as a person would use it in
//! two terminals: register, verify with the code the development sender wrote, chat.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ALICE: &str = "+4915100000041";
const BOB: &str = "+4915100000042";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn relay_bin() -> PathBuf {
    // pawl-relay is built into the same target directory as this test's binary.
    let me = PathBuf::from(env!("CARGO_BIN_EXE_pawl-chat"));
    me.with_file_name(format!("pawl-relay{}", std::env::consts::EXE_SUFFIX))
}

fn chat(dir: &Path, name: &str, url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pawl-chat"));
    c.arg("--db")
        .arg(dir.join(format!("{name}.db")))
        .arg("--relay")
        .arg(url)
        .arg("--cert")
        .arg(dir.join("relay.pem"));
    c
}

fn run(mut c: Command) -> String {
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A running `chat`: its stdin, and its stdout lines as they come.
struct Session {
    _child: Killed,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Session {
    fn start(mut c: Command) -> Self {
        let mut child = c
            .arg("chat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Session {
            _child: Killed(child),
            stdin,
            lines,
        }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn wait_for(&self, needle: &str) -> String {
        self.wait_until(needle, |l| l.contains(needle))
    }

    fn wait_until(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let needle = what;
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return l,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; saw:\n{}", seen.join("\n"));
    }
}

#[test]
fn two_people_chat_through_a_relay_process() {
    let relay = relay_bin();
    assert!(
        relay.exists(),
        "{} missing: build the workspace (cargo test --workspace builds it)",
        relay.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _relay = Killed(
        Command::new(&relay)
            .args(["--db", &format!("sqlite:{}", d.join("relay.db").display())])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-self-signed")
            .arg(d.join("relay.pem"))
            .arg("--code-dir")
            .arg(d.join("codes"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::fs::create_dir_all(d.join("codes")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || !d.join("relay.pem").exists()
    {
        assert!(Instant::now() < deadline, "relay did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("wss://127.0.0.1:{port}/v1/ws");
    for (name, phone) in [("alice", ALICE), ("bob", BOB)] {
        let mut c = chat(d, name, &url);
        c.args(["register", phone]);
        assert!(run(c).contains("code requested"));
        let code = std::fs::read_to_string(d.join("codes").join(format!("{phone}.code"))).unwrap();
        let mut c = chat(d, name, &url);
        c.args(["verify", phone, &code]);
        assert!(run(c).contains(&format!("registered {phone}")));
    }
    let mut bob = Session::start(chat(d, "bob", &url));
    bob.wait_for("(connected)");
    let mut alice = Session::start(chat(d, "alice", &url));
    alice.wait_for("(connected)");
    alice.say(&format!("/to {BOB}"));
    alice.say("hello from the terminal");
    alice.wait_for("sent)");
    let got = bob.wait_for("hello from the terminal");
    assert!(got.starts_with(&format!("[{ALICE}]")), "{got}");
    alice.wait_for(&format!("delivered to {BOB}.1"));
    bob.say(&format!("/to {ALICE}"));
    bob.say("/read");
    alice.wait_for(&format!("read by {BOB}.1"));
    bob.say("and back");
    alice.wait_for(&format!("[{BOB}] and back"));
    bob.say("/safety");
    // The 60-digit safety number, the same on both sides.
    let is_number = |l: &str| l.trim().len() == 60 && l.trim().bytes().all(|b| b.is_ascii_digit());
    let b_digits = bob.wait_until("60 digits", is_number);
    alice.say("/safety");
    let a_digits = alice.wait_until("60 digits", is_number);
    assert_eq!(a_digits.trim(), b_digits.trim());
    alice.say("/quit");
    bob.say("/quit");
}
