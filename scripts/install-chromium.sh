#!/bin/sh
# Installs Debian's chromium for the console's browser tests (playwright-core drives it;
# Playwright's own browser download needs the internet). Idempotent: nothing to do when
# /usr/bin/chromium exists.
set -eu
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=sudo
else
  echo "install-chromium: $CHROMIUM is missing and this user can neither install packages nor use sudo without a password." >&2
  echo "install-chromium: install it yourself (apt-get install -y chromium) and run the tests again." >&2
  exit 1
fi
echo "install-chromium: installing Debian's chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get install -y --no-install-recommends chromium \
       || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends chromium; }; }; then
  echo "install-chromium: apt-get could not install chromium (no package source reachable?); the console's browser tests need $CHROMIUM." >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "install-chromium: apt-get finished but $CHROMIUM is still missing." >&2
  exit 1
fi
echo "install-chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed" >&2
