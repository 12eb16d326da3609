#!/usr/bin/env bash
# The browser-against-native benchmark (issue 13): builds @pawl/web (build.sh), a second
# copy of its wasm with the bench export (feature `bench`, never shipped) into
# target/web/bench-pkg, the native bench (core/benches/web_compare.rs) and pawl-relay
# (release), then runs bench.mjs: both sides in the same run, a table of figures,
# ratios and bounds. Exits non-zero when a bound fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib.sh"
cd "$here"
bash build.sh
bash in-chroot.sh cargo build --profile wasm-release --locked --target wasm32-unknown-unknown \
    -p pawl-web --features bench
rm -rf "$PAWL_ROOT/target/web/bench-pkg"
bash in-chroot.sh wasm-bindgen --target web --out-dir /src/target/web/bench-pkg \
    /src/target/web/wasm32-unknown-unknown/wasm-release/pawl_web.wasm
(cd "$PAWL_ROOT" && cargo build --release --locked -p pawl-relay \
    && cargo bench --locked -p pawl-core --bench web_compare --no-run)
export PAWL_BIN_DIR="$(pawl_target)/release"
node bench.mjs
