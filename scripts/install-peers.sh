#!/usr/bin/env bash
# The real SIP peers the end-to-end tests drive: SIPp, baresip, sipsak (Debian packages).
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip)
command -v sipsak >/dev/null 2>&1 || missing+=(sipsak)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing test peers: ${missing[*]}"
  ./apt-install.sh "${missing[@]}"
fi
