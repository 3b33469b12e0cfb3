#!/usr/bin/env bash
# The HTML report's browser tests (tests/test_report.py) need Debian's chromium (playwright drives it; no
# browser is ever downloaded) and a CJK font for the Chinese report's screenshot. Installs them when missing.
set -euo pipefail
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk"; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-wqy-zenhei >/dev/null
fi
/usr/bin/chromium --version
