#!/usr/bin/env bash
# make dev: build the Worker, apply local D1 migrations, start the fake Eka API on
# 127.0.0.1:8788 and run `wrangler dev` on 127.0.0.1:8787 with .dev.vars (written from
# .dev.vars.example when missing), and a reminder receiver on 127.0.0.1:8789. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false DO_NOT_TRACK=1 WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false
if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  echo "wrote .dev.vars from .dev.vars.example (fake Eka API, signing key dev-signing-key)"
fi
sh scripts/build-worker.sh
npx wrangler d1 migrations apply DB --local
node tests/support/fake-eka.mjs --port 8788 &
fake=$!
node tests/support/reminder-receiver.mjs --port 8789 &
receiver=$!
trap 'kill $fake $receiver 2>/dev/null || true' EXIT INT TERM
echo
echo "Worker: http://127.0.0.1:8787  — send a signed test webhook with: npm run send-webhook"
echo "Console: http://127.0.0.1:8787/admin/  (ADMIN_TOKEN from .dev.vars)"
echo "Schedule a reminder: npm run schedule-reminder -- --id <appointment id> --in 10"
echo
npx wrangler dev --ip 127.0.0.1 --port 8787 --local --show-interactive-dev-session=false
