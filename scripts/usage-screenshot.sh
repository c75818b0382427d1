#!/usr/bin/env bash
# Open the usage report's chart page in headless Chromium (Debian's package) and save a screenshot,
# then check that the picture shows the charts (matplotlib's first two bar colours are on it).
# Usage: scripts/usage-screenshot.sh [usage.html] [usage.png]   (make usage-screenshot)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HTML=$(realpath "${1:-$ROOT/usage-report/usage.html}")
PNG=$(realpath -m "${2:-${HTML%.html}.png}")
say() { printf '==> %s\n' "$*"; }
die() { printf 'usage-screenshot: %s\n' "$*" >&2; exit 1; }

[ -f "$HTML" ] || die "no report page at $HTML: run playbooks/usage_report.yml first"
if ! command -v chromium >/dev/null; then
  [ "$(id -u)" = 0 ] || die "chromium is missing: run 'sudo apt-get install chromium'"
  say "installing chromium (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# --no-sandbox: Chromium's sandbox refuses to run as root (CI and the demo run as root).
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1800 \
  --screenshot="$PNG" "file://$HTML" >/dev/null 2>&1 || die "chromium could not render $HTML"
[ -s "$PNG" ] || die "chromium wrote no screenshot to $PNG"
"$ROOT/.venv/bin/python" - "$PNG" <<'PY'
import sys
from PIL import Image

image = Image.open(sys.argv[1]).convert("RGB")
colours = image.getcolors(image.width * image.height)  # [(count, (r, g, b)), ...]


# matplotlib's default colour cycle starts with #1f77b4 (blue) and #ff7f0e (orange).
def pixels_near(target):
    return sum(count for count, colour in colours if all(abs(a - b) <= 12 for a, b in zip(colour, target)))


blue, orange = pixels_near((0x1F, 0x77, 0xB4)), pixels_near((0xFF, 0x7F, 0x0E))
print(f"screenshot {sys.argv[1]}: {image.width}x{image.height}, chart pixels blue={blue} orange={orange}")
if blue < 500:
    sys.exit("the screenshot shows no chart bars (fewer than 500 pixels of the first bar colour)")
PY
say "screenshot of the charts: $PNG"
