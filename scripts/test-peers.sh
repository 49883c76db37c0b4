#!/usr/bin/env bash
# Installs the real peers the tests talk to, from Debian's packages, when
# they are missing and we run as root. With CI=true a peer that is still
# missing afterwards fails the run: tests never silently skip under CI.
set -euo pipefail

# command-to-check:debian-package
PEERS=(
  "/usr/lib/postgresql/*/bin/initdb:postgresql"
  "ufw:ufw"
  "nft:nftables"
  "ip:iproute2"
  "curl:curl"
  "unshare:util-linux"
  "py3mod=cryptography:python3-cryptography"
  "chromium:chromium"
  "turnserver:coturn"
  "stun:stun-client"
  "stund:stun-server"
  "sipp:sip-tester"
  "linphonec:linphone-cli"
  "sipsak:sipsak"
)

have() {
  case "$1" in
    py3mod=*) /usr/bin/python3 -c "import ${1#py3mod=}" >/dev/null 2>&1 ;;
    /*) compgen -G "$1" >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
  esac
}

missing=()
for p in "${PEERS[@]}"; do
  have "${p%%:*}" || missing+=("${p##*:}")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test-peers: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test-peers: missing ${missing[*]} (run as root to install them)" >&2
  fi
fi

still=()
for p in "${PEERS[@]}"; do
  have "${p%%:*}" || still+=("${p##*:}")
done
if [ ${#still[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "test-peers: FAIL: still missing under CI=true: ${still[*]}" >&2
    exit 1
  fi
  echo "test-peers: warning: tests needing ${still[*]} will skip" >&2
fi
