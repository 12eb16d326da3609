#!/usr/bin/env bash
# Builds @pawl/web: the wasm module (profile wasm-release, wasm32 in the forky chroot), its
# wasm-bindgen glue (--target web) and the TypeScript layer, into bindings/web/dist/.
# Idempotent; installs the chroot (setup-chroot.sh) and the npm dev tools when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
bash setup-chroot.sh >/dev/null
bash in-chroot.sh cargo build --profile wasm-release --locked --target wasm32-unknown-unknown -p pawl-web
# The glue goes beside the TypeScript (ts/wasm/, not committed) so tsc checks the
# calls against its .d.ts; it is copied into dist/ unchanged.
rm -rf ts/wasm dist
bash in-chroot.sh wasm-bindgen --target web --remove-name-section --remove-producers-section \
    --out-dir /src/bindings/web/ts/wasm \
    /src/target/web/wasm32-unknown-unknown/wasm-release/pawl_web.wasm
if [ ! -x node_modules/.bin/tsc ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/tsc -p tsconfig.json
mkdir -p dist/wasm
cp ts/wasm/pawl_web.js ts/wasm/pawl_web.d.ts ts/wasm/pawl_web_bg.wasm dist/wasm/
echo "built: $here/dist ($(du -sh dist | cut -f1))"
