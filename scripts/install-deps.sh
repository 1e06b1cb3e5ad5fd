#!/usr/bin/env bash
# Installs every build, test and demo dependency from Debian packages, skipping what is present.
# Run as root (or with sudo available). Safe to run again.
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  libboost1.81-dev libsqlite3-dev sqlite3
  unixodbc unixodbc-dev odbcinst libsqliteodbc odbc-postgresql odbc-mariadb
  libyaml-cpp-dev libcurl4-openssl-dev libzstd-dev libssl-dev nlohmann-json3-dev
  libcli11-dev doctest-dev libxxhash-dev
  postgresql mariadb-server mariadb-client
  procps python3 openssl util-linux coreutils
  dosfstools fusefat rsync
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Packaged servers must not start system-wide instances: the tests start their own on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
