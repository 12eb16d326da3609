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
        "encrypted store",
        "bob <- alice: \"Hi Bob! This is end-to-end encrypted.\"",
        "alice <- bob: \"Hi Alice, got it.\"",
        "redelivered envelope recognised",
        "replay rejected: duplicate message",
        "bob <- alice in group: \"Dinner at 8?\"",
        "Bob scanned Alice's code: match",
        "5 messages in the chat with alice, 4 unread",
        "search \"encrypted\": 1 hit(s)",
        "Demo finished",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    // The QR code is printed with half-block characters.
    assert!(stdout.contains('▀') || stdout.contains('▄') || stdout.contains('█'));
}
