#!/bin/sh
# Builds the C example agents (agents/c/*.c) into agents/c-*.wasm, which are committed: npm install and
# CI never need a C compiler. Needs clang, lld, wasi-libc and the wasm32 compiler-rt builtins
# (Debian/Ubuntu: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32).
# Usage: scripts/build-c-agents.sh [OUT_DIR]   (default: agents/). test/integration/c-agents.test.ts
# rebuilds into a temporary directory and compares byte for byte when the same clang is present.
set -eu
# clang runs any wasm-opt it finds on PATH after linking (clang 14 has no flag to stop it), and npm
# puts binaryen's (from assemblyscript) first: keep node_modules out so the bytes do not depend on how
# the script is started. A system-wide wasm-opt (binaryen) still changes them.
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v node_modules | paste -sd: -)
CC=${CC:-clang}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/agents}
sysroot=${WASI_SYSROOT:-/usr}
mkdir -p "$out"
common="-O2 -I$root/sdk/c -Wl,--strip-all -ffile-prefix-map=$root/=./"

# Freestanding: no libc, no WASI imports, only igor hostcalls. --no-entry: a library of exports.
$CC --target=wasm32 -ffreestanding -nostdlib $common -Wl,--no-entry \
  -o "$out/c-ticker.wasm" "$root/agents/c/ticker.c"

# wasi-libc reactor: _initialize runs the constructors; malloc/free exported for agent_resume.
$CC --target=wasm32-wasi --sysroot="$sysroot" -mexec-model=reactor $common \
  -Wl,--export=malloc -Wl,--export=free \
  -o "$out/c-wasi-clock.wasm" "$root/agents/c/wasi-clock.c"

# Test fixtures (test/fixtures/wasi/c/*.c): wasi-libc reactors written the way an author would, each
# proving one scenario of test/integration/wasi-c-authors.test.ts. Built next to agents/ when OUT_DIR
# is given (the test compares them there), else into test/fixtures/wasi/.
fixtures=${1:-$root/test/fixtures/wasi}
for src in "$root"/test/fixtures/wasi/c/*.c; do
  $CC --target=wasm32-wasi --sysroot="$sysroot" -mexec-model=reactor $common \
    -Wl,--export=malloc -Wl,--export=free \
    -o "$fixtures/c-$(basename "$src" .c).wasm" "$src"
done

# The committed artifacts record the compiler that built them (another clang emits other bytes).
if [ $# -eq 0 ]; then $CC --version | head -n 1 > "$root/agents/c/BUILT_WITH"; fi
echo "built: $out/c-ticker.wasm $out/c-wasi-clock.wasm ($($CC --version | head -n 1))"
