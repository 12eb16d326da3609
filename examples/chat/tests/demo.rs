//! The README's first command must run and report what happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

#[test]
fn demo_runs_and_reports() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pawl-chat"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "A relay in this process",
        "wss://127.0.0.1:",
        "the development sender wrote",
        "registered as device 1 of +14155550100, connected over TLS, 100 one-time prekeys uploaded",
        "bob <- alice: \"Hi Bob! This is end-to-end encrypted.\"",
        "alice: read by +14155550199.1",
        "alice: bob is typing",
        "alice <- bob: \"Hi Alice, got it.\"",
        "alice -> bob: \"Are you there?\" (queued at the relay",
        "bob <- alice: \"Call me when you're back.\" (was waiting at the relay)",
        "alice: both delivered",
        "Bob scanned Alice's code: match",
        "bob: 4 messages with alice, 2 unread",
        "search \"encrypted\": 1 hit(s)",
        "the offline messages are [Delivered, Delivered]",
        "alice: uploaded a ",
        "bob <- alice: image \"alice-safety-code.png\" (image/png",
        "caption \"my safety code, as a picture\"",
        "identical ",
        "alice-desktop: shows a link code",
        "alice (phone): scanned it: link a device with platform '7' as device 2? yes",
        "now device 2 of +14155550100",
        "alice-desktop: history from the phone:",
        "alice-desktop <- bob: \"Hello to all your devices\"",
        "alice <- bob: \"Hello to all your devices\"",
        "bob <- alice (device 2): \"Typed on my desktop\"",
        "a copy of what the desktop sent to bob: \"Typed on my desktop\" (Outgoing)",
        "0 unread here, archived = true",
        "unlinked device 2",
        "bob now encrypts to alice's devices [1]",
        "alice: created group \"Weekend\" with 3 members",
        "carol: added to \"Weekend\" by its admin",
        "bob <- +14155550100 in \"Weekend\": \"Climbing on Saturday?\"",
        "carol <- +14155550100 in \"Weekend\": \"Climbing on Saturday?\"",
        "alice <- +14155550199 in \"Weekend\": \"I'm in.\"",
        "carol: removed from the group by its admin: true",
        "alice -> group: sender key rotated (chain ",
        "bob <- +14155550100 in \"Weekend\": \"Just the two of us, then.\"",
        "carol: 2 messages in the group, the last \"I'm in.\": nothing sent after her removal",
        "Demo finished",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    // The QR code is printed with half-block characters.
    assert!(stdout.contains('▀') || stdout.contains('▄') || stdout.contains('█'));
}
