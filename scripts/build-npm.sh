#!/bin/sh
# Builds the npm package into pkg/: the core compiled with the `node` feature, wasm-bindgen's
# Node (CommonJS) glue, wasm-opt, and the JavaScript in npm/. Uses its own target directory
# so it does not fight the Worker's size-optimised build over the cache.
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_NPM:-target/npm-build}"
cargo build --release --target wasm32-unknown-unknown --features node
rm -rf pkg && mkdir -p pkg/wasm
wasm-bindgen "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/eka_webhook_edge.wasm" \
  --target nodejs --out-dir pkg/wasm --out-name core --no-typescript
if [ -x node_modules/.bin/wasm-opt ]; then
  node_modules/.bin/wasm-opt pkg/wasm/core_bg.wasm -O3 -o pkg/wasm/core_bg.wasm \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
fi
cp npm/package.json npm/index.cjs npm/index.mjs npm/index.d.ts npm/README.md pkg/
cp -r npm/examples pkg/examples
echo "pkg/: $(wc -c < pkg/wasm/core_bg.wasm) bytes of wasm ($(gzip -9c pkg/wasm/core_bg.wasm | wc -c) gzip)"
