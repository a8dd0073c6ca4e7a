#!/usr/bin/env bash
# The real SIP peers the end-to-end tests drive: SIPp, baresip, sipsak (Debian packages),
# and espeak-ng + sox, which build the default voicemail greeting (data/greeting-default.wav).
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip)
command -v sipsak >/dev/null 2>&1 || missing+=(sipsak)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing test peers: ${missing[*]}"
  ./apt-install.sh "${missing[@]}"
fi
