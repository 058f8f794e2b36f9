#!/usr/bin/env bash
# Installs every Debian package the project needs, then builds it (release).
# Usage: scripts/setup.sh            (needs root for apt-get; skips packages already present)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libopenblas-dev libopenblas0-pthread libdnnl-dev zlib1g-dev
    libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg libsqlite3-dev
    libtesseract-dev tesseract-ocr-eng libopenmpi-dev openmpi-bin iproute2)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "setup: building (release)"
swift build -c release
