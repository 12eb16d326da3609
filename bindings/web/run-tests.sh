#!/usr/bin/env bash
# @pawl/web's tests in a real browser: builds the package (build.sh: wasm in the forky
# chroot, glue, TypeScript), the relay and pawl-chat (the native peer), checks that
# `npm pack` makes an installable tarball, then runs tests/*.test.mjs with node's test
# runner: headless Debian Chromium driven by playwright-core against pawl-relay on
# loopback.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
cd "$here"
bash build.sh
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
