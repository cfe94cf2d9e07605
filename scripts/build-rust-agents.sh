#!/bin/sh
# Builds the Rust test agents (test/fixtures/rust/*.rs) into test/fixtures/rust/*.wasm, which are
# committed: npm install and CI never need a Rust compiler. Each is one file built with rustc alone,
# the flags an author's Cargo.toml gives (crate-type cdylib, opt-level "s", panic = "abort", symbols
# stripped). Needs rustc with the wasm32 std (Debian/Ubuntu: apt-get install rustc
# libstd-rust-dev-wasm32, which gives /usr/bin/rustc 1.63 with wasm32-unknown-unknown and
# wasm32-wasi; rustup's targets work too: RUSTC=rustc, and wasm32-wasip1 for wasm32-wasi from 1.78).
# Usage: scripts/build-rust-agents.sh [OUT_DIR]   (default: test/fixtures/rust/).
# test/integration/rust-agents.test.ts rebuilds into a temporary directory and compares byte for byte
# when the same rustc is present.
set -eu
RUSTC=${RUSTC:-/usr/bin/rustc}
WASI_TARGET=${WASI_TARGET:-wasm32-wasi}
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/test/fixtures/rust
out=${1:-$src}
mkdir -p "$out"
# Sources are named relative to their directory (panic messages quote them), never by absolute path.
cd "$src"
common="--edition 2021 -C opt-level=s -C panic=abort -C strip=symbols"

# Each agent is one rustc run, all at once (waited for one by one: a failed build fails the script).
pids=""
build() { "$RUSTC" $common "$@" & pids="$pids $!"; }

# no_std: no WASI imports, only igor hostcalls; its own malloc (a static buffer).
for f in nostd-counter nostd-panic; do
  build --crate-type cdylib --target wasm32-unknown-unknown -o "$out/$f.wasm" "$f.rs"
done

# std on WASI: a cdylib (no _start); wasi-libc's malloc/free exported for agent_resume.
for f in wasi-std panic-in-tick exit-in-tick grow-to-cap hashmap-in-tick hashmap-seeded-in-init state-outside-checkpoint; do
  build --crate-type cdylib --target "$WASI_TARGET" \
    -C link-arg=--export=malloc -C link-arg=--export=free -o "$out/$f.wasm" "$f.rs"
done

# A bin: a WASI command exporting _start (igord never calls it).
build --crate-type bin --target "$WASI_TARGET" \
  -C link-arg=--export=malloc -C link-arg=--export=free -o "$out/command-bin.wasm" command-bin.rs

for pid in $pids; do wait "$pid"; done

# The committed artifacts record the compiler that built them (another rustc emits other bytes).
if [ $# -eq 0 ]; then $RUSTC --version > "$src/BUILT_WITH"; fi
echo "built: $(ls "$out"/*.wasm | wc -l) Rust agents into $out ($($RUSTC --version))"
