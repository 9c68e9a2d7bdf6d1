#!/bin/sh
# Builds the Worker (build/index.js + wasm) with worker-build. On machines without internet
# access worker-build cannot download its helpers, so point it at local ones when present:
# wasm-bindgen from cargo (same version as Cargo.lock), wasm-opt from npm binaryen, esbuild
# from wrangler's dependencies.
set -eu
cd "$(dirname "$0")/.."
bin=node_modules/.bin
if [ -z "${WASM_BINDGEN_BIN:-}" ] && command -v wasm-bindgen >/dev/null 2>&1; then
  export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
fi
if [ -z "${WASM_OPT_BIN:-}" ] && [ -x "$bin/wasm-opt" ]; then
  export WASM_OPT_BIN="$PWD/$bin/wasm-opt"
fi
if [ -z "${ESBUILD_BIN:-}" ] && [ -x "$bin/esbuild" ]; then
  export ESBUILD_BIN="$PWD/$bin/esbuild"
fi
# The Worker is built for size (the upload budget is 350 KiB gzip); native builds keep opt-level 3.
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z}"
# No symbol names in the upload (they cost ~170 KB; the Worker is built never to panic).
export CARGO_PROFILE_RELEASE_STRIP="${CARGO_PROFILE_RELEASE_STRIP:-symbols}"
# Size: the upload is built on nightly with the standard library rebuilt for size and panics
# compiled to a trap (`-Cpanic=immediate-abort`: no formatting machinery, no unwinding tables;
# the Worker is built never to panic). ~32 KB gzip less than stable. `make deps` installs the
# nightly toolchain and its rust-src; EKA_WORKER_STABLE=1 builds on stable instead.
# `-Zfmt-debug=none`: `{:?}` prints nothing in the upload (−2.9 KiB gzip: Debug impls and the
# str/char escaping tables they pull in). No answer or log of ours is Debug text;
# `worker`'s Display of a D1 error is, so runtime/d1.rs reads D1's message itself.
# `-Zlocation-detail=none`: no file/line constants for panics that cannot print.
if [ -z "${EKA_WORKER_STABLE:-}" ]; then
  export RUSTUP_TOOLCHAIN="${EKA_WORKER_NIGHTLY:-nightly}"
  export CARGO_UNSTABLE_BUILD_STD="std,panic_abort"
  export RUSTFLAGS="${RUSTFLAGS:-} -Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none"
fi
exec worker-build --release "$@" --features worker
