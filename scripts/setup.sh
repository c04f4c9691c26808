#!/usr/bin/env bash
# Prepares a Debian machine (as root) to build and test this project: the C compiler and perl
# that aws-lc-sys needs, libcrypto for SQLCipher, the PostgreSQL, MariaDB and Redis test
# services running, with a `test` database in PostgreSQL and MariaDB, and Cosmian's `ckms` 5.28 for the interop test. Idempotent: it says what it installs, starts or creates, and a second run
# changes nothing ("already ..." on every line).
set -euo pipefail

say() { echo "setup: $*"; }

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v perl >/dev/null 2>&1 || need_apt+=(perl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# libcrypto for SQLCipher (rusqlite's bundled-sqlcipher), found through pkg-config.
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# SoftHSM2: the PKCS#11 library of the HSM tests.
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need_apt+=(softhsm2)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
else
  say "already installed: gcc, perl, curl, postgresql, mariadb-server, redis-server, libssl-dev, pkg-config, softhsm2"
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is required (install Rust with rustup)" >&2; exit 1; }

wait_for() { # name, command
  for _ in $(seq 1 30); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "setup: $1 does not answer" >&2
  return 1
}

if pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  say "PostgreSQL already running on 127.0.0.1:5432"
else
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_for PostgreSQL "pg_isready -h 127.0.0.1 -p 5432"
fi
if psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  say "PostgreSQL database test already exists"
else
  say "creating PostgreSQL database test"
  psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
fi

if mariadb -h 127.0.0.1 -u root -e "SELECT 1" >/dev/null 2>&1; then
  say "MariaDB already running on 127.0.0.1:3306"
else
  say "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  wait_for MariaDB "mariadb -h 127.0.0.1 -u root -e 'SELECT 1'"
fi
if mariadb -h 127.0.0.1 -u root -e "USE test" >/dev/null 2>&1; then
  say "MariaDB database test already exists"
else
  say "creating MariaDB database test"
  mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS test"
fi
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "Redis already running on 127.0.0.1:6379"
else
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for Redis "redis-cli -h 127.0.0.1 -p 6379 ping"
fi
# Cosmian's own CLI, a client this project does not write, for the interop test
# (crates/server/tests/cosmian_ckms.rs). Built once (about 10 minutes on 2 cores) and kept
# under ~/.cache so clean clones and CI runs reuse it.
ckms_root="$HOME/.cache/kms-tools"
if "$ckms_root/bin/ckms" --version 2>/dev/null | grep -q " 5.28.0"; then
  say "Cosmian ckms 5.28.0 already installed in $ckms_root/bin"
else
  say "installing Cosmian ckms 5.28.0 into $ckms_root/bin (cargo install, about 10 minutes)"
  CARGO_TARGET_DIR="$HOME/.cache/ckms-build" \
    cargo install ckms --version 5.28.0 --locked --root "$ckms_root" --quiet
fi
# PyKMIP 0.11, a KMIP client this project does not write, for the socket test
# (crates/server/tests/pykmip.rs), in a virtual environment of its own.
pykmip="$HOME/.cache/kms-tools/pykmip"
if "$pykmip/bin/python" -c "import kmip; assert kmip.__version__ == '0.11.0'" 2>/dev/null; then
  say "PyKMIP 0.11.0 already installed in $pykmip"
else
  say "installing PyKMIP 0.11.0 into $pykmip (pip)"
  python3 -m venv "$pykmip"
  "$pykmip/bin/pip" install --quiet pykmip==0.11.0
fi
# openapi-spec-validator, which checks /openapi.json against the OpenAPI 3.1 schema
# (crates/server/tests/operations_http.rs), in a virtual environment of its own.
openapi="$HOME/.cache/kms-tools/openapi"
if "$openapi/bin/python" -c "import openapi_spec_validator" 2>/dev/null; then
  say "openapi-spec-validator already installed in $openapi"
else
  say "installing openapi-spec-validator 0.7.2 into $openapi (pip)"
  python3 -m venv "$openapi"
  "$openapi/bin/pip" install --quiet openapi-spec-validator==0.7.2
fi
say "ready"
