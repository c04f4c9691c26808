#!/usr/bin/env bash
# Builds the Debian package of kms-server with cargo-deb, installs it on this machine and checks
# it works: both binaries in /usr/bin, the user kms, /etc/kms/kms.toml as a conffile, the server
# started from the packaged configuration as the user kms answering /health, a key created with
# the packaged ckms, a clean stop on SIGTERM, and `systemd-analyze verify` on the unit. Then it
# purges the package and removes what the package left (the user kms, /var/lib/kms) when they
# were not there before, failure or not, so the machine is left as it was.
#
# Runs as root (dpkg). cargo-deb is installed once into ~/.cache/kms-tools. The server listens
# on 127.0.0.1:$KMS_PACKAGE_CHECK_PORT (default 19998), given with --port, which overrides the
# file. Usage: bash scripts/package-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "package-check: $*"; }
fail() {
  echo "package-check: FAILED: $*" >&2
  exit 1
}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kms-target}"
port="${KMS_PACKAGE_CHECK_PORT:-19998}"
cargo_deb_version=3.8.0
tools="$HOME/.cache/kms-tools"
package=kms-server
unit_name=kms-server.service

[ "$(id -u)" = 0 ] || fail "run it as root: it installs and purges a package with dpkg"
command -v dpkg >/dev/null 2>&1 || fail "dpkg is required (a Debian or Ubuntu machine)"
command -v curl >/dev/null 2>&1 || fail "curl is required"
command -v setpriv >/dev/null 2>&1 || fail "setpriv (util-linux) is required"
# The check purges the package at the end: it must not be the operator's installation.
state=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
if [ -n "$state" ] && [ "$state" != "not-installed" ]; then
  fail "the package $package is already on this machine ($state); this check would purge it (dpkg -P $package first if it is a leftover)"
fi
if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
  fail "something already answers on 127.0.0.1:$port; set KMS_PACKAGE_CHECK_PORT to a free port"
fi

# What the package may create and the clean-up removes only if it was not there before.
user_existed=no
getent passwd kms >/dev/null && user_existed=yes
group_existed=no
getent group kms >/dev/null && group_existed=yes
state_dir_existed=no
[ -e /var/lib/kms ] && state_dir_existed=yes

scratch=$(mktemp -d)
chmod 0755 "$scratch"
installed=no
server_pid=""
cleanup() {
  local status=$?
  set +e
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    say "clean-up: stopping the server (pid $server_pid)"
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null
  fi
  if [ "$installed" = yes ]; then
    say "clean-up: dpkg -P $package"
    dpkg -P "$package" >"$scratch/purge.log" 2>&1 || {
      cat "$scratch/purge.log"
      echo "package-check: clean-up: dpkg -P $package failed" >&2
    }
  fi
  if [ "$user_existed" = no ] && getent passwd kms >/dev/null; then
    say "clean-up: removing the user kms"
    userdel kms
  fi
  if [ "$group_existed" = no ] && getent group kms >/dev/null; then
    groupdel kms
  fi
  if [ "$state_dir_existed" = no ] && [ -e /var/lib/kms ]; then
    say "clean-up: removing /var/lib/kms"
    rm -rf /var/lib/kms
  fi
  rm -rf "$scratch"
  if [ "$status" -eq 0 ]; then
    say "OK"
  else
    echo "package-check: FAILED (exit status $status)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT

# 1. cargo-deb, pinned, built once.
cargo_deb="$tools/bin/cargo-deb"
if [ -x "$cargo_deb" ] && "$cargo_deb" --version 2>/dev/null | grep -qw "$cargo_deb_version"; then
  say "cargo-deb $cargo_deb_version already installed in $tools/bin"
else
  say "installing cargo-deb $cargo_deb_version into $tools/bin (cargo install, a few minutes)"
  # Built in a directory of its own, removed afterwards, not in the project's target directory.
  build_dir=$(mktemp -d)
  CARGO_TARGET_DIR="$build_dir" cargo install --locked --quiet --root "$tools" \
    --version "$cargo_deb_version" cargo-deb
  rm -rf "$build_dir"
fi
say "$("$cargo_deb" --version)"

# 2. The release binaries, then the package from them.
say "building the release binaries (cargo build --release -p kms-server -p ckms; target dir $CARGO_TARGET_DIR)"
cargo build --release -p kms-server -p ckms
say "building the package (cargo deb -p $package --no-build)"
mkdir "$scratch/deb"
# cargo-deb is run as a cargo subcommand; only this command sees ~/.cache/kms-tools/bin.
PATH="$tools/bin:$PATH" cargo deb -p "$package" --no-build -o "$scratch/deb"
deb=$(find "$scratch/deb" -name '*.deb' | head -n 1)
[ -n "$deb" ] || fail "cargo deb made no .deb"
say "package: $(basename "$deb") ($(du -h "$deb" | cut -f1))"
# The binaries are stripped; their debug symbols are in a -dbgsym .ddeb beside it.
for ddeb in "$scratch"/deb/*.ddeb; do
  [ -e "$ddeb" ] && say "debug symbols: $(basename "$ddeb") ($(du -h "$ddeb" | cut -f1)), not installed"
done
dpkg-deb --field "$deb" Package Version Architecture Depends | sed 's/^/package-check:   /'
dpkg-deb --contents "$deb" | awk '{print "package-check:   " $1 " " $2 " " $6}'
dpkg-deb --info "$deb" conffiles | grep -qx /etc/kms/kms.toml \
  || fail "/etc/kms/kms.toml is not a conffile of the package"
say "conffiles: $(dpkg-deb --info "$deb" conffiles | tr '\n' ' ')"

# 3. Install it.
say "dpkg -i $(basename "$deb")"
installed=yes
dpkg -i "$deb"
say "installed: $(dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}' "$package")"

# 4. What it installed.
for bin in /usr/bin/kms-server /usr/bin/ckms; do
  [ -x "$bin" ] || fail "$bin is missing"
done
say "/usr/bin/kms-server: $(/usr/bin/kms-server --version)"
# Our ckms, not another one (Cosmian's ckms may be on this machine too).
ckms_version=$(/usr/bin/ckms --version)
say "/usr/bin/ckms: $ckms_version"
[ "$ckms_version" = "ckms $(/usr/bin/kms-server --version | awk '{print $2}')" ] \
  || fail "/usr/bin/ckms is not this project's ckms: $ckms_version"
getent passwd kms >/dev/null || fail "the user kms does not exist"
say "user kms: $(id kms)"
[ -f /etc/kms/kms.toml ] || fail "/etc/kms/kms.toml is missing"
say "/etc/kms/kms.toml: $(stat -c '%U:%G %a' /etc/kms/kms.toml)"
dpkg-query -W -f='${Conffiles}\n' "$package" | grep -q ' /etc/kms/kms.toml ' \
  || fail "dpkg does not list /etc/kms/kms.toml as a conffile"
unit=""
for candidate in "/lib/systemd/system/$unit_name" "/usr/lib/systemd/system/$unit_name"; do
  if [ -f "$candidate" ]; then
    unit=$candidate
    break
  fi
done
[ -n "$unit" ] || fail "the unit $unit_name is not installed"
say "unit: $unit"
# systemd creates /var/lib/kms for the service (StateDirectory=kms); without systemd (here, a
# container) the postinst has created it.
[ -d /var/lib/kms ] || fail "/var/lib/kms is missing"
say "/var/lib/kms: $(stat -c '%U:%G %a' /var/lib/kms)"
[ "$(stat -c %U /var/lib/kms)" = kms ] || fail "/var/lib/kms is not owned by kms"

# 5. The server, from the packaged configuration, as the unit runs it: user kms, a clean
# environment, /var/lib/kms as working directory, umask 0077.
say "starting /usr/bin/kms-server --config /etc/kms/kms.toml --port $port as the user kms"
(
  cd /var/lib/kms
  umask 0077
  exec setpriv --reuid kms --regid kms --init-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/kms LANG=C.UTF-8 \
    /usr/bin/kms-server --config /etc/kms/kms.toml --port "$port"
) >"$scratch/server.log" 2>&1 &
server_pid=$!
health=""
for _ in $(seq 1 30); do
  if health=$(curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null); then
    break
  fi
  health=""
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$scratch/server.log" >&2
    fail "the server exited before answering /health"
  fi
  sleep 1
done
if [ -z "$health" ]; then
  cat "$scratch/server.log" >&2
  fail "no answer from http://127.0.0.1:$port/health within 30 s"
fi
say "GET /health: $health"
[ "$(ps -o user= -p "$server_pid" | tr -d ' ')" = kms ] || fail "the server does not run as kms"
say "server runs as: $(ps -o user=,pid=,args= -p "$server_pid")"

# 6. A key, with the packaged ckms (in a scratch HOME: no ~/.cosmian/kms.json of this machine).
say "ckms --url http://127.0.0.1:$port sym keys create package-check-key"
HOME="$scratch" env -u KMS_CLI_CONF -u KMS_ACCESS_TOKEN -u KMS_SERVER_URL \
  /usr/bin/ckms --url "http://127.0.0.1:$port" sym keys create package-check-key \
  | sed 's/^/package-check:   /'
[ -f /var/lib/kms/kms.db ] || fail "no database in /var/lib/kms"
say "database: $(stat -c '%n %U:%G %a' /var/lib/kms/kms.db)"

# 7. SIGTERM: the server stops on its own (requests in flight get --shutdown-timeout, 30 s).
say "stopping the server with SIGTERM"
kill -TERM "$server_pid"
for _ in $(seq 1 40); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 1
done
if kill -0 "$server_pid" 2>/dev/null; then
  cat "$scratch/server.log" >&2
  fail "the server is still running 40 s after SIGTERM"
fi
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""
[ "$server_status" -eq 0 ] || {
  cat "$scratch/server.log" >&2
  fail "the server exited with status $server_status after SIGTERM"
}
say "server stopped (exit status 0); its last log line: $(tail -n 1 "$scratch/server.log" | sed 's/\x1b\[[0-9;]*m//g')"

# 8. The unit file, checked by systemd itself.
if command -v systemd-analyze >/dev/null 2>&1; then
  say "systemd-analyze verify $unit"
  if systemd-analyze verify "$unit" >"$scratch/verify.log" 2>&1; then
    sed 's/^/package-check:   /' "$scratch/verify.log"
    say "systemd-analyze verify: OK"
    # The exposure score of the hardening, for information (systemd 250 and later).
    if score=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | tail -n 1); then
      say "systemd-analyze security: ${score#→ }"
    fi
  else
    sed 's/^/package-check:   /' "$scratch/verify.log" >&2
    fail "systemd-analyze verify found problems in $unit"
  fi
else
  # Installing systemd would change this machine beyond what the check undoes.
  say "SKIPPED systemd-analyze verify: systemd-analyze is absent (apt-get install systemd to run it)"
fi

say "all checks passed"
