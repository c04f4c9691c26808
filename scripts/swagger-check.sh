#!/usr/bin/env bash
# Loads the Swagger UI of a running release server in headless Chromium and checks that it
# rendered every documented route (the JavaScript ran and read /openapi.json). Installs Debian's
# chromium when missing. Usage: scripts/swagger-check.sh [SCREENSHOT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
if ! command -v chromium > /dev/null; then
  echo "swagger-check: installing Debian's chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium > /dev/null
fi
cargo build --release --quiet --bin kms-server
scratch=$(mktemp -d)
port="${KMS_SWAGGER_CHECK_PORT:-19871}"
"$target/release/kms-server" --hostname 127.0.0.1 --port "$port" --sqlite-path "$scratch" \
  > "$scratch/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/health" > /dev/null && break
  sleep 0.1
done
url="http://127.0.0.1:$port/swagger-ui/"
chrome=(chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=10000)
dom=$("${chrome[@]}" --dump-dom "$url" 2> /dev/null)
expected=$(curl -fs "http://127.0.0.1:$port/openapi.json" \
  | python3 -c 'import json,sys; print("\n".join(sorted(json.load(sys.stdin)["paths"])))')
missing=0
while read -r path; do
  if ! grep -qF "data-path=\"$path\"" <<< "$dom"; then
    echo "swagger-check: the rendered page lacks $path" >&2
    missing=1
  fi
done <<< "$expected"
[ "$missing" = 0 ] || exit 1
echo "swagger-check: Swagger UI rendered $(wc -l <<< "$expected") routes in headless Chromium"
if [ -n "${1:-}" ]; then
  "${chrome[@]}" --window-size=1280,1400 --screenshot="$1" "$url" 2> /dev/null
  echo "swagger-check: screenshot in $1"
fi
