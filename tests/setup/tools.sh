#!/usr/bin/env bash
# Installs what the feed tests need beyond the Python packages, so that a fresh
# machine (a developer's or CI's) gets the same tools: the real readers sfeed
# and Newsboat (Debian packages), the Chromium browser that renders the pages
# (Debian package chromium), the JSON Feed 1.1 schema (npm package
# jsonfeed-schema@0.5.0, ISC) in the project-local .cache/npm, and Node with the
# ActivityPub framework Fedify (@fedify/fedify, MIT, pinned in
# tests/fedify/package-lock.json) for the follower of the ActivityPub tests and
# benchmark, in tests/fedify/node_modules. Safe to re-run:
# each step is skipped when its result is already there. .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi

if ! command -v sfeed >/dev/null || ! command -v newsboat >/dev/null \
  || ! command -v chromium >/dev/null; then
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    sfeed newsboat chromium fonts-dejavu-core
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi

schema_package=.cache/npm/node_modules/jsonfeed-schema/package.json
if ! grep -q '"version": "0.5.0"' "$schema_package" 2>/dev/null; then
  npm install --prefix .cache/npm --no-audit --no-fund --save-exact jsonfeed-schema@0.5.0
fi
test -f .cache/npm/node_modules/jsonfeed-schema/schema-v1.1.json

fedify_package=tests/fedify/node_modules/@fedify/fedify/package.json
if ! grep -q '"version": "1.10.12"' "$fedify_package" 2>/dev/null; then
  npm ci --prefix tests/fedify --no-audit --no-fund
fi
node --input-type=module -e "await import('$PWD/tests/fedify/node_modules/@fedify/fedify/dist/mod.js')"
