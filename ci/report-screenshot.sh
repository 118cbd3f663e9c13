#!/usr/bin/env bash
# A PNG of an HTML report for review, drawn by headless Chromium with no network:
#   ci/report-screenshot.sh [REPORT_HTML] [PNG]    (default: results/report.html, docs/report.png)
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(realpath "${1:-results/report.html}")
png=${2:-docs/report.png}
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --proxy-server=127.0.0.1:9 \
  --virtual-time-budget=20000 --window-size=1100,1500 --screenshot="$png" "file://$report" 2>/dev/null
echo "$png"
