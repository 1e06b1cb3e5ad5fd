#!/usr/bin/env bash
# Makes the TLS certificate the scheduler presents to agents: a private key and a self-signed
# certificate naming every address agents dial. An agent checks that the scheduler's
# certificate names the host it dials (the host of `scheduler:` in agent.yaml, or
# `tls.server_name`), so list every DNS name and IP address agents use to reach it.
#
#   scripts/make-cert.sh [-o PREFIX] [-d DAYS] [-f] ADDRESS...
#
#   -o PREFIX  write PREFIX.key and PREFIX.crt (default: ./scheduler)
#   -d DAYS    validity in days (default: 825)
#   -f         overwrite existing files (otherwise an existing key is kept and this refuses)
#   -q         quiet: print nothing on success
#   ADDRESS    DNS names and IPv4/IPv6 addresses, e.g. dx.edu.sh.cn 10.20.0.5
#
# Then, on the scheduler (scheduler.yaml):  tls: {cert: PREFIX.crt, key: PREFIX.key}
# and on every agent, after copying PREFIX.crt (never the key) to it (agent.yaml):
#                                           tls: {ca: /etc/dx/scheduler.crt}
# The key is created with mode 0600. Exit codes: 0 done, 2 bad usage, 1 openssl failed.
set -euo pipefail

prefix=./scheduler
days=825
force=0
quiet=0
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "o:d:fqh" opt; do
  case $opt in
    o) prefix=$OPTARG ;;
    d) days=$OPTARG ;;
    f) force=1 ;;
    q) quiet=1 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "make-cert.sh: name at least one address agents dial (DNS name or IP)" >&2; usage; }
[[ $days =~ ^[1-9][0-9]*$ ]] || { echo "make-cert.sh: -d wants a number of days, got '$days'" >&2; exit 2; }

san=""
for a in "$@"; do
  if [[ $a =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || [[ $a == *:* ]]; then
    san+="${san:+,}IP:$a"
  elif [[ $a =~ ^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    san+="${san:+,}DNS:$a"
  else
    echo "make-cert.sh: '$a' is neither a DNS name nor an IP address" >&2
    exit 2
  fi
done

if [ $force = 0 ] && { [ -e "$prefix.key" ] || [ -e "$prefix.crt" ]; }; then
  echo "make-cert.sh: $prefix.key or $prefix.crt exists; use -f to replace them" >&2
  exit 2
fi
mkdir -p "$(dirname "$prefix")"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
  -keyout "$prefix.key" -out "$prefix.crt" -subj "/CN=dx-scheduler" \
  -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,digitalSignature,keyCertSign" \
  -addext "extendedKeyUsage=serverAuth" 2>"$prefix.openssl.log" ||
  { cat "$prefix.openssl.log" >&2; rm -f "$prefix.openssl.log"; exit 1; }
rm -f "$prefix.openssl.log"
chmod 600 "$prefix.key"
chmod 644 "$prefix.crt"
if [ $quiet = 0 ]; then
  echo "wrote $prefix.key (keep it on the scheduler, mode 0600) and $prefix.crt for: $san"
  echo "scheduler.yaml: tls: {cert: $prefix.crt, key: $prefix.key}"
  echo "agent.yaml:     tls: {ca: <where you copy $prefix.crt>}   (valid $days days)"
fi
