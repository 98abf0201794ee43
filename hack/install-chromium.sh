#!/usr/bin/env bash
# Installs Debian's Chromium for the web UI's browser test (web/browser_test.go),
# only when it is missing. Run as root (CI and the dev machines are).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
