#!/bin/sh
# make fuzz: each cargo-fuzz target for FUZZ_SECONDS (default 60), then a line per target with
# its executions and crashes, and the total. FUZZ_TARGETS (space-separated) runs only those.
# Installs nightly and cargo-fuzz when missing. Exits 1 on a crash; the crashing input is in
# fuzz/artifacts/<target>/ (add it as a regression test).
set -u
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# No sanitizer by default: the core is safe Rust (no unsafe), and AddressSanitizer slows the
# targets 3-5x; FUZZ_SANITIZER=address brings it back.
sanitizer="${FUZZ_SANITIZER:-none}"
cargo +nightly fuzz build -O -s "$sanitizer" >/dev/null 2>&1 || cargo +nightly fuzz build -O -s "$sanitizer" || exit 1
targets="${FUZZ_TARGETS:-signature_header canonicalize payload cron_time urls admin_query standard_webhooks seal}"
status=0
summary=""
total=0
for target in $targets; do
  log=$(mktemp)
  cargo +nightly fuzz run "$target" -O -s "$sanitizer" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1
  code=$?
  runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -n 1)
  crashes=$(grep -c 'Test unit written to' "$log")
  [ "$code" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
  [ "$crashes" -gt 0 ] && { status=1; grep -E 'panicked|Test unit written' "$log"; }
  summary="$summary
$(printf '%-18s %12s executions in %ss  %s crash(es)' "$target" "${runs:-?}" "$seconds" "$crashes")"
  total=$((total + ${runs:-0}))
  rm -f "$log"
done
echo "fuzz summary:$summary
$(printf '%-18s %12s executions' total "$total")"
exit $status
