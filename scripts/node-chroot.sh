#!/usr/bin/env bash
# Runs the test suite on Debian sid's Node.js (24 as of 2026-11) in a chroot, so a machine with Node 20
# can check that the code runs unchanged on a newer Node. Needs root, debootstrap, and the Debian and
# npm registries. The first run builds the chroot (a few minutes; npm ci builds better-sqlite3 for
# that Node); later runs reuse it and test the current commit.
#
#   sudo scripts/node-chroot.sh                      # npm test
#   sudo scripts/node-chroot.sh test/unit test/integration/migration.test.ts
#
# IGORD_CHROOT picks the chroot's folder (default /var/tmp/igord-node-sid). Debian's own npm package is
# not used (its dependencies were broken in sid); this machine's npm runs under the chroot's node.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="${IGORD_CHROOT:-/var/tmp/igord-node-sid}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ ! -x "$root/usr/bin/node" ]; then
  debootstrap --variant=minbase --include=ca-certificates,nodejs,libnode-dev,python3,make,g++,git sid "$root" "$mirror"
fi
if [ ! -f "$root/opt/npm/bin/npm-cli.js" ]; then
  mkdir -p "$root/opt"
  cp -a "$(npm root -g)/npm" "$root/opt/npm"
  printf '#!/bin/sh\nexec node /opt/npm/bin/npm-cli.js "$@"\n' > "$root/usr/local/bin/npm"
  printf '#!/bin/sh\nexec node /opt/npm/bin/npx-cli.js "$@"\n' > "$root/usr/local/bin/npx"
  chmod +x "$root/usr/local/bin/npm" "$root/usr/local/bin/npx"
fi
# The host's trust store (a registry proxy's CA) and resolver; node-gyp builds against the chroot's
# own Node headers (libnode-dev), never downloading any.
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf 'nodedir=/usr\nfund=false\naudit=false\nupdate-notifier=false\n' > "$root/root/.npmrc"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"

# The commit being tested, cloned fresh (a folder named src above the checkout, as some hosts have).
rm -rf "$root/src/igord"
mkdir -p "$root/src"
git clone -q "$repo" "$root/src/igord"
echo "testing $(git -C "$repo" rev-parse --short HEAD) on Node $(chroot "$root" node --version)"
if [ "$#" -eq 0 ]; then
  chroot "$root" sh -c 'cd /src/igord && npm ci && npm test'
else
  chroot "$root" sh -c 'cd /src/igord && npm ci && npx vitest run "$@"' sh "$@"
fi
