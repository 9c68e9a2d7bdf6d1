#!/bin/sh
# Builds the previous release's Worker once, for the comparisons in make bench and make
# load-compare: PREVIOUS_REV (default 2a44255, the 0.1.0 release) exported with `git archive`
# into target/previous-release (its build/ and migrations/), its Cargo target beside it.
set -eu
cd "$(dirname "$0")/.."
rev="${PREVIOUS_REV:-2a44255}"
dir="target/previous-release"
if [ -f "$dir/build/index.js" ] && [ "$(cat "$dir/.rev" 2>/dev/null)" = "$rev" ]; then
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
git archive "$rev" | tar -x -C "$dir"
ln -s "$PWD/node_modules" "$dir/node_modules"
(cd "$dir" && CARGO_TARGET_DIR="$PWD/../previous-target" sh scripts/build-worker.sh >/dev/null)
echo "$rev" >"$dir/.rev"
