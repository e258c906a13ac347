#!/usr/bin/env bash
# Render a report's HTML in headless Chromium and save a PNG, to see that the
# page opens with no network and that its charts draw.
#
# Usage: scripts/report_screenshot.sh [REPORT.html] [OUT.png]
#   With no report given, makes one from a small demo pile (scripts/common.sh).
# Needs Debian's chromium (apt-get install -y chromium); installs it if apt can.
set -euo pipefail
. "$(dirname "$0")/common.sh"
html=${1:-}
out=${2:-/tmp/mdkeep-report.png}
chromium_bin
if [ -z "$html" ]; then
  root=$(mktemp -d)
  demo_pile "$root"
  html="$root/report.html"
  "$m" report --format html --out "$html"
fi
shoot "file://$html" "$out"
echo "screenshot: $out (from $html)"
