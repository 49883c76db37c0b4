#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster in a temp dir, runs the given
# command with FSPLANE_TEST_DATABASE_URL pointing at it, and removes the
# cluster afterwards. An existing FSPLANE_TEST_DATABASE_URL is used as is.
set -euo pipefail

if [ -n "${FSPLANE_TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$bindir" ]; then
  if [ "${CI:-}" = true ]; then
    echo "pg-throwaway: FAIL: no PostgreSQL server binaries under CI=true" >&2
    exit 1
  fi
  echo "pg-throwaway: no PostgreSQL server; the PostgreSQL half of the tests will skip" >&2
  exec "$@"
fi

dir=$(mktemp -d /tmp/fsplane-pg.XXXXXX)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo 55432)
as=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root.
  chown postgres: "$dir" 2>/dev/null || { useradd -r -M postgres && chown postgres: "$dir"; }
  as=(runuser -u postgres --)
fi

cleanup() {
  "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as[@]}" "$bindir/initdb" -D "$dir/data" -U fsplane -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
"${as[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U fsplane fsplane_test

export FSPLANE_TEST_DATABASE_URL="postgres://fsplane@127.0.0.1:$port/fsplane_test?sslmode=disable"
echo "pg-throwaway: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
set +e
"$@"
rc=$?
exit $rc
