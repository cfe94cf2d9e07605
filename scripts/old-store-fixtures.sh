#!/usr/bin/env bash
# Regenerates test/fixtures/old-stores/*.db.gz: data dirs written by real older igord builds, which
# the tests open with the current one (test/integration/old-stores.test.ts). A fresh clone may not
# have the history these commits are in, so the stores are committed; this script says how each was
# made. Needs this repo's git history, node_modules installed, the examples built (npm run build)
# and port 8402 free (the paywall mock).
#
#   scripts/old-store-fixtures.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/test/fixtures/old-stores
WORK=$(mktemp -d)
mkdir -p "$OUT"
cleanup() {
  for w in "$WORK"/tree-*; do [ -d "$w" ] && git -C "$ROOT" worktree remove --force "$w" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# build COMMIT: a worktree of COMMIT with its TypeScript built, node_modules linked from this repo's.
build() {
  local c=$1 tree=$WORK/tree-$1
  git -C "$ROOT" worktree add --detach "$tree" "$c" >/dev/null
  mkdir "$tree/node_modules"
  for e in "$ROOT"/node_modules/* "$ROOT"/node_modules/.bin; do ln -s "$e" "$tree/node_modules/"; done
  # The first builds imported pino-pretty (dropped since); a stub lets them load (logs stay JSON).
  if [ ! -e "$tree/node_modules/pino-pretty" ]; then
    mkdir "$tree/node_modules/pino-pretty"
    echo '{"name":"pino-pretty","version":"0.0.0","main":"index.js"}' >"$tree/node_modules/pino-pretty/package.json"
    echo 'module.exports = function () { return process.stdout; };' >"$tree/node_modules/pino-pretty/index.js"
  fi
  (cd "$tree" && npx tsc -p tsconfig.build.json >/dev/null 2>&1 || true)
  [ -f "$tree/scripts/bundle-libp2p.mjs" ] && (cd "$tree" && node scripts/bundle-libp2p.mjs >/dev/null)
  echo "$tree"
}

# run TREE DATA SECONDS SIGNAL [flags]: a daemon of that build; SIGNAL after SECONDS once it loaded its agents.
run() {
  local tree=$1 data=$2 secs=$3 sig=$4
  shift 4
  local log=$WORK/run.log
  : >"$log"
  (cd "$tree" && exec node dist/cli/main.js --data-dir "$data" --listen off --control off "$@" >"$log" 2>&1) &
  local pid=$!
  for _ in $(seq 1 200); do grep -q agents_loaded "$log" && break; sleep 0.1; done
  sleep "$secs"
  kill -"$sig" "$pid"
  wait "$pid" || true
}

pack() {
  sqlite3 "$1/igord.db" "PRAGMA wal_checkpoint(TRUNCATE); VACUUM;" >/dev/null
  gzip -9 -n -c "$1/igord.db" >"$OUT/$2.db.gz"
  echo "wrote $OUT/$2.db.gz (schema $(sqlite3 "$1/igord.db" 'SELECT MAX(version) FROM schema_version'))"
}

# 1. The first day's igord (05335ac, 2026-11-21, store schema 4: event logs not signed yet, no
#    history bases): heartbeat, built with that day's SDK, ticking and checkpointed at a clean stop.
tree=$(build 05335ac)
(cd "$tree" && node scripts/build-agents.mjs >/dev/null)
mkdir -p "$WORK/agents4" && cp "$tree"/agents/heartbeat.wasm "$tree"/agents/heartbeat.manifest.json "$WORK/agents4/"
run "$tree" "$WORK/schema4" 4 INT --agents-dir "$WORK/agents4" --tick-interval 500ms --checkpoint-interval 1s
pack "$WORK/schema4" schema4-heartbeat

# 2. igord of 2026-12-01 (b348b2a, store schema 16), before receipts ended at their checkpoint's
#    budget (0cb00b2): x402buyer pays the paywall right after a periodic checkpoint that got no
#    receipt and is SIGKILLed before its tick commits; the next start debits the lost payment and
#    stops before a tick (a receipt signed on the no-tick path, budget after lacking the payment);
#    the start after that runs a few ticks and signs the next receipt with a negative cost.
tree=$(build b348b2a)
mkdir -p "$WORK/agents16/x402buyer"
cp "$ROOT/examples/x402buyer/agent.wasm" "$ROOT/examples/x402buyer/agent.manifest.json" "$WORK/agents16/x402buyer/"
PAYWALL_ADDR=127.0.0.1:8402 node "$tree/scripts/mock/paywall.mjs" >/dev/null 2>&1 &
paywall=$!
data=$WORK/schema16
log=$WORK/pay.log
(cd "$tree" && exec node dist/cli/main.js --data-dir "$data" --listen off --control off --agents-dir "$WORK/agents16" --tick-interval 500ms --checkpoint-interval 2s --receipt-interval 1h --http-private-networks 127.0.0.0/8 >"$log" 2>&1) &
pid=$!
for _ in $(seq 1 300); do grep -q "Payment CONFIRMED" "$log" && break; sleep 0.1; done
kill -9 "$pid"
wait "$pid" || true
run "$tree" "$data" 0 INT --agents-dir "$WORK/agents16" --tick-interval 10m --lease-duration 20m --http-private-networks 127.0.0.0/8
run "$tree" "$data" 3 INT --agents-dir "$WORK/agents16" --tick-interval 500ms --checkpoint-interval 1s --receipt-interval 1s --http-private-networks 127.0.0.0/8
kill "$paywall"
echo "receipts: $(sqlite3 "$data/igord.db" "SELECT group_concat(tick_start || '..' || tick_end || ':' || cost, ' ') FROM receipts")"
pack "$data" schema16-negative-receipt
