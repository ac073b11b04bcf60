#!/usr/bin/env bash
# Makes the Debian 12 base image the container test builds newsbot on, from
# Debian's own packages (no image registry needed): mmdebstrap writes a
# minimal bookworm with python3 and python3-venv (Python 3.11), and
# `docker import` turns it into an image. Prints the image's name.
# The image trusts the certificate authorities this machine adds to Debian's
# (/usr/local/share/ca-certificates), so that builds reach the package
# registries through the same network as the machine itself.
# Cached: when the image exists it is reused, and the root filesystem tarball
# is kept in .cache/container so a fresh engine imports it without a download.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The recipe (this file) names the image: change it and the image is made anew.
recipe=$(sha256sum "$0" | cut -c1-12)
image=newsbot-test/debian-python:bookworm-$recipe
tarball=.cache/container/debian-python-bookworm-$recipe.tar

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
if [ ! -s "$tarball" ]; then
  mkdir -p "$(dirname "$tarball")"
  # No documentation, manual pages or translations: they are not needed to run
  # Python and would be a third of the image.
  mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='Acquire::Languages "none"' \
    --customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share' \
    --customize-hook='chroot "$1" update-ca-certificates --fresh >/dev/null' \
    bookworm "$tarball.part" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    >"$tarball.log" 2>&1 || { tail -n 20 "$tarball.log" >&2; exit 1; }
  mv "$tarball.part" "$tarball"
fi
docker import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
  --change 'LABEL org.newsbot.test-base=yes' "$tarball" "$image" >/dev/null
echo "$image"
