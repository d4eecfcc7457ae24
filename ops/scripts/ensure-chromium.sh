#!/usr/bin/env bash
# Installs Debian's chromium for the browser test when it is missing (never a browser
# download: the package comes from Debian). Without root or apt it says so and the
# browser test skips with that reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is not installed and cannot be installed here (needs root and apt-get);" \
       "the browser test will be skipped" >&2
  exit 0
fi
echo "installing Debian's chromium for the browser test..." >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
