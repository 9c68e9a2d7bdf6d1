#!/bin/sh
# make load-compare: the same load (make load's, without the kill, which the previous release
# has no event log to survive) against the previous release and this checkout, on this
# machine, alternating, best of two each; prints webhooks/s and the ratio.
# The previous release is built by scripts/previous-release.sh (PREVIOUS_REV, default 0.1.0).
set -eu
cd "$(dirname "$0")/.."
sh scripts/previous-release.sh
dir="target/previous-release"
node=node_modules/.bin/node
# The same settings for both: no destinations (the previous release has none), so no
# EVENT_ENCRYPTION_KEY either, and FORWARD_URL is sent during the webhook in both.
# The same front for both: Miniflare's static-assets router with this checkout's public/ (the
# console). On Cloudflare the assets layer is not the Worker's CPU; under Miniflare it runs on
# workerd's one thread, ~1 ms per request (benches/workerd-op-costs.mjs), which only this
# checkout paid before (0.1.0 has no [assets]). LOAD_COMPARE_ASSETS=own gives each build its own
# (0.1.0 none), as before.
front="--assets this"
[ "${LOAD_COMPARE_ASSETS:-same}" = own ] && front=""
args="--webhooks ${WEBHOOKS:-2000} --concurrency ${CONCURRENCY:-50} --bursts 20 --kill 0 --seed 7 --destinations 0"
best() { grep '"perSecond"' | sed -E 's/[^0-9]//g'; }
# workerd's CPU per webhook sent (ms; its one thread is what bounds webhooks/s on a quiet
# machine, and the figure moves far less with the machine's load than the rate does).
cpu() { "$node" -e 'const s = require("fs").readFileSync(process.argv[1], "utf8");
  const r = JSON.parse(s.slice(s.indexOf("{"), s.lastIndexOf("}") + 1));
  const c = r.workerdCpuMsPerDelivery && r.workerdCpuMsPerDelivery.sending;
  console.log(c == null ? "?" : (c * r.deliveries / r.webhooks).toFixed(2));' "$1"; }
prev=0; cur=0
for round in 1 2; do
  p=$($node tests/load/load-test.mjs $args $front --previous "$dir" | tee "target/load-previous-$round.json" | best)
  c=$($node tests/load/load-test.mjs $args | tee "target/load-current-$round.json" | best)
  [ "$p" -gt "$prev" ] && prev=$p
  [ "$c" -gt "$cur" ] && cur=$c
  echo "round $round: previous $p webhooks/s, this checkout $c webhooks/s;" \
    "workerd CPU per webhook: previous $(cpu "target/load-previous-$round.json") ms," \
    "this checkout $(cpu "target/load-current-$round.json") ms"
done
[ -n "$front" ] && echo "both behind the same static-assets router (LOAD_COMPARE_ASSETS=own: each its own)"
awk -v p="$prev" -v c="$cur" 'BEGIN { printf "best of two: previous release %d webhooks/s, this checkout %d webhooks/s: %.2fx\n", p, c, c / p }'
