#!/usr/bin/env bash
# @pawl/web's tests in a real browser: builds the package (build.sh: wasm in the forky
# chroot, glue, TypeScript), the relay and pawl-chat (the native peer), checks that
# `npm pack` makes an installable tarball, then runs tests/*.test.mjs with node's test
# runner (headless Debian Chromium driven by playwright-core against pawl-relay on
# loopback) and tests/wasm.rs (wasm-bindgen-test in Chromium, in a dedicated Worker).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
cd "$here"
bash build.sh
# The wasm32 side of the code under clippy too (the workspace's clippy is native: there
# pawl-web is empty and the browser files of core/src/client are not compiled).
bash in-chroot.sh cargo clippy --locked --target wasm32-unknown-unknown \
    -p pawl-core --no-default-features --features client,qr -- -D warnings
bash in-chroot.sh cargo clippy --locked --target wasm32-unknown-unknown \
    -p pawl-web --all-targets -- -D warnings
(cd "$PAWL_ROOT" && cargo build -p pawl-relay -p pawl-chat --locked)
export PAWL_BIN_DIR="$(pawl_target)/debug"

# The tarball: packs, and a fresh project installs it and finds its files.
pack_dir="$(mktemp -d)"
trap 'rm -rf "$pack_dir"' EXIT
tarball="$(npm pack --silent --pack-destination "$pack_dir")"
(cd "$pack_dir" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "./$tarball" >/dev/null)
for f in index.js index.d.ts worker.js wasm/pawl_web_bg.wasm; do
    [ -s "$pack_dir/node_modules/@pawl/web/dist/$f" ] || { echo "npm pack: dist/$f missing from $tarball" >&2; exit 1; }
done
echo "npm pack: $tarball installs"

node --test --test-concurrency=1 tests/

# Rust-level tests of the wasm build (tests/wasm.rs) in Chromium: wasm-bindgen-test-runner
# in the chroot drives the host's chromium through chromedriver (webdriver.json).
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
chromedriver --port="$port" >"$pack_dir/chromedriver.log" 2>&1 &
driver=$!
trap 'kill $driver 2>/dev/null; rm -rf "$pack_dir"' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
bash in-chroot.sh env CHROMEDRIVER_REMOTE="http://127.0.0.1:$port" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --locked --target wasm32-unknown-unknown -p pawl-web --test wasm
