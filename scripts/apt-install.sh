#!/usr/bin/env bash
# Install Debian/Ubuntu packages by name, with sudo when not root. Used by the Makefile.
set -euo pipefail
[ $# -gt 0 ] || exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "$@"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "$@"
fi
