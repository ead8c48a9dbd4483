#!/usr/bin/env bash
# System programs livekit_lab runs as separate processes: espeak-ng (GPL-3.0, never linked) and
# Chromium (browser tests only). Installed with apt as root; skipped when already present.
set -euo pipefail
need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${need[*]}. Install them with your package manager (e.g. sudo apt-get install ${need[*]}) or run as root." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
for attempt in $(seq 1 30); do
  if apt-get -o DPkg::Lock::Timeout=60 update -qq && \
     apt-get -o DPkg::Lock::Timeout=60 install -y -qq "${need[@]}" >/dev/null; then
    exit 0
  fi
  echo "apt busy or failed (attempt $attempt); retrying in 10 s" >&2
  sleep 10
done
echo "could not install ${need[*]}" >&2
exit 1
