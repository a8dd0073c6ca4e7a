#!/usr/bin/env bash
# The real peers the end-to-end tests drive and the programs the server uses beside itself:
# SIPp, baresip, sipsak (SIP peers), rtpengine (the media relay of the web phone), Chromium
# (the web phone's tests), Node/npm (to build the web phone's page), and espeak-ng + sox
# (the default voicemail greeting, data/greeting-default.wav). Debian packages.
set -euo pipefail
cd "$(dirname "$0")"
# With --runtime (used by `make run`): only what the server itself uses (rtpengine, node/npm, espeak-ng, sox).
# With --bench (used by `make bench`): also Kamailio, the benchmark's reference proxy.
missing=()
if [ "${1:-}" = "--bench" ]; then
  command -v kamailio >/dev/null 2>&1 || missing+=(kamailio)
fi
if [ "${1:-}" != "--runtime" ]; then
  command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
  command -v baresip >/dev/null 2>&1 || missing+=(baresip)
  command -v sipsak >/dev/null 2>&1 || missing+=(sipsak)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
command -v rtpengine >/dev/null 2>&1 || missing+=(rtpengine-daemon)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing peers: ${missing[*]}"
  ./apt-install.sh "${missing[@]}"
fi
