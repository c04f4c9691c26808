#!/usr/bin/env bash
# The load benchmark of the README: release builds of kms-server on SQLite, PostgreSQL, MariaDB
# and Redis (redis-findex), each in a process of its own on a fresh database, measured by
# `ckms bench` with every scenario of every server interleaved next to a minimal HTTP server in
# its own process (the floor). Needs the services of scripts/setup.sh and wrk (installed here
# when missing).
#   scripts/bench.sh [ckms bench flags...]     e.g. --duration 10 --rounds 2
# KMS_BENCH_BACKENDS="sqlite postgresql mysql redis" picks the servers;
# KMS_BENCH_PRELOAD=N stores N more keys in each first (for memory with many keys).
# KMS_BENCH_COSMIAN=PATH (Cosmian KMS's server binary, `cosmian_kms`, built separately; nothing of
# it is in this repository) adds it on SQLite and on PostgreSQL as peers in the same interleaved
# run: cosmian-sqlite and cosmian-postgresql (KMS_BENCH_PRELOAD does not fill them).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
backends="${KMS_BENCH_BACKENDS:-sqlite postgresql mysql redis}"
preload="${KMS_BENCH_PRELOAD:-0}"
if ! command -v wrk > /dev/null; then
  echo "bench: installing wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk > /dev/null
fi
cargo build --release --quiet --bin kms-server --bin ckms
pg="${KMS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
my="${KMS_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
redis="${KMS_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
psql "${pg%/*}/postgres" -qc "DROP DATABASE IF EXISTS kmsbench" -c "CREATE DATABASE kmsbench" > /dev/null
mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS kmsbench; CREATE DATABASE kmsbench"
scratch=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
port=19950
# Waits up to 30 s for URL to answer; otherwise fails with the end of the server's LOG.
wait_up() {
  for _ in $(seq 300); do
    curl -fs "$1" > /dev/null && return 0
    sleep 0.1
  done
  echo "bench: $1 did not answer; the end of $2:" >&2
  tail -20 "$2" >&2
  exit 1
}
args=()
for b in $backends; do
  case "$b" in
    sqlite) db=(--sqlite-path "$scratch/sqlite") ;;
    postgresql) db=(--database-type postgresql --database-url "${pg%/*}/kmsbench") ;;
    mysql) db=(--database-type mysql --database-url "${my%/*}/kmsbench") ;;
    redis) db=(--database-type redis-findex --database-url "$redis" --redis-master-password bench
               --redis-findex-label bench --redis-key-prefix "kmsbench$$" --cleanup-on-startup) ;;
    *) echo "bench: unknown backend $b" >&2; exit 2 ;;
  esac
  # Logs as shipped (an access line per request), into a file.
  "$target/release/kms-server" --hostname 127.0.0.1 --port "$port" "${db[@]}" \
    ${KMS_BENCH_SERVER_FLAGS:-} > "$scratch/$b.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$port/health" "$scratch/$b.log"
  if [ "$preload" -gt 0 ]; then
    python3 - "$port" "$preload" <<'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, n = int(sys.argv[1]), int(sys.argv[2])
# Batches of 1000 creates, 16 in flight (creates commit in groups: one batch at a time would
# wait an fsync per key). Key i carries the tag bulk-(i // 10), ten keys per tag, so that
# the Locate by tag scenario finds ten among all of them.
def attributes(i):
    return {"tag": "Attributes", "type": "Structure", "value": [
        {"tag": "CryptographicAlgorithm", "type": "Enumeration", "value": "AES"},
        {"tag": "CryptographicLength", "type": "Integer", "value": 256},
        {"tag": "VendorAttribute", "type": "Structure", "value": [
            {"tag": "VendorIdentification", "type": "TextString", "value": "cosmian"},
            {"tag": "AttributeName", "type": "TextString", "value": "tag"},
            {"tag": "AttributeValue", "type": "TextString", "value": json.dumps([f"bulk-{i // 10}"])}]}]}
def batch(first):
    k = min(1000, n - first)
    items = [{"tag": "BatchItem", "type": "Structure", "value": [
        {"tag": "Operation", "type": "Enumeration", "value": "Create"},
        {"tag": "RequestPayload", "type": "Structure", "value": [
            {"tag": "ObjectType", "type": "Enumeration", "value": "SymmetricKey"},
            attributes(first + j)]}]} for j in range(k)]
    msg = {"tag": "RequestMessage", "type": "Structure", "value": [
        {"tag": "RequestHeader", "type": "Structure", "value": [
            {"tag": "ProtocolVersion", "type": "Structure", "value": [
                {"tag": "ProtocolVersionMajor", "type": "Integer", "value": 2},
                {"tag": "ProtocolVersionMinor", "type": "Integer", "value": 1}]},
            {"tag": "BatchCount", "type": "Integer", "value": k}]}] + items}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/kmip/2_1", json.dumps(msg).encode(),
                                 {"Content-Type": "application/json"})
    body = urllib.request.urlopen(req, timeout=600).read()
    if b"OperationFailed" in body:
        raise SystemExit(f"bench: preload batch at {first} failed")
start = time.time()
with ThreadPoolExecutor(16) as pool:
    list(pool.map(batch, range(0, n, 1000)))
print(f"bench: {n} keys preloaded on port {port} in {time.time() - start:.0f} s", file=sys.stderr)
PY
    # Start-up with every key stored: the server is restarted, and timed to its first answer.
    kill "${pids[-1]}"; wait "${pids[-1]}" 2> /dev/null || true
    keep=()
    for a in "${db[@]}"; do [ "$a" = --cleanup-on-startup ] || keep+=("$a"); done
    t0=$(date +%s%N)
    "$target/release/kms-server" --hostname 127.0.0.1 --port "$port" "${keep[@]}" \
      ${KMS_BENCH_SERVER_FLAGS:-} >> "$scratch/$b.log" 2>&1 &
    pids[-1]=$!
    until curl -fs "http://127.0.0.1:$port/health" > /dev/null; do sleep 0.002; done
    echo "bench: $b restarted with $preload keys: first answer after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  fi
  args+=(--target "$b=http://127.0.0.1:$port" --pid "$b=${pids[-1]}")
  port=$((port + 1))
done
if [ -n "${KMS_BENCH_COSMIAN:-}" ]; then
  psql "${pg%/*}/postgres" -qc "DROP DATABASE IF EXISTS kmsbench_cosmian" \
    -c "CREATE DATABASE kmsbench_cosmian" > /dev/null
  for b in sqlite postgresql; do
    case "$b" in
      sqlite) db=(--database-type sqlite --sqlite-path "$scratch/cosmian-sqlite") ;;
      postgresql) db=(--database-type postgresql --database-url "${pg%/*}/kmsbench_cosmian") ;;
    esac
    # Its logs at their default level, into a file.
    "$KMS_BENCH_COSMIAN" --hostname 127.0.0.1 --port "$port" "${db[@]}" \
      > "$scratch/cosmian-$b.log" 2>&1 &
    pids+=($!)
    wait_up "http://127.0.0.1:$port/version" "$scratch/cosmian-$b.log"
    args+=(--target "cosmian-$b=http://127.0.0.1:$port" --pid "cosmian-$b=${pids[-1]}")
    port=$((port + 1))
  done
fi
echo "bench: $backends; $preload keys preloaded each; $(nproc) cores"
"$target/release/ckms" bench "${args[@]}" "$@"
