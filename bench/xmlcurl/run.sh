#!/usr/bin/env bash
# Benchmark of the xml-curl backend. Run by hand, not in CI:
#
#   ./scripts/pg-throwaway.sh bench/xmlcurl/run.sh
#
# Seeds 100,000 extensions and 50 trunks into an empty PostgreSQL database
# (DATABASE_URL, or the throwaway one), starts `fsplane serve` and a minimal
# net/http server that answers a fixed body of the same size, and drives
# both with wrk (Debian package wrk) posting REGISTER sip_auth lookups for
# random users, from another process. Prints rates, p99 latencies and the
# warm ratio, and cold-lookup latencies (cache empty, every request a user
# not asked before).
#
# The warm runs alternate fsplane and the baseline REPEAT times and compare
# medians, so load from other processes hits both alike.
#
# Tunables: USERS TRUNKS DURATION THREADS CONNS COLD_DURATION REPEAT.
set -euo pipefail

USERS=${USERS:-100000}
TRUNKS=${TRUNKS:-50}
DURATION=${DURATION:-15s}
COLD_DURATION=${COLD_DURATION:-5s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
REPEAT=${REPEAT:-3}

db=${DATABASE_URL:-${FSPLANE_TEST_DATABASE_URL:-}}
if [ -z "$db" ]; then
  echo "run.sh: set DATABASE_URL to an empty PostgreSQL database, or run under scripts/pg-throwaway.sh" >&2
  exit 1
fi
command -v wrk >/dev/null || { echo "run.sh: wrk missing (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "run.sh: curl missing" >&2; exit 1; }

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/xmlcurl"
work=$(mktemp -d /tmp/xmlcurl-bench.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" != 0 ] && [ -f "$work/serve.log" ]; then
    cp "$work/serve.log" /tmp/xmlcurl-bench-serve.log
    echo "run.sh: failed; fsplane's log is in /tmp/xmlcurl-bench-serve.log" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

echo "== build" >&2
(cd "$root" && go build -o "$work/fsplane" ./cmd/fsplane && go build -o "$work/bench" ./bench/xmlcurl)

key=$("$work/fsplane" keys generate)
user=freeswitch
pass=bench-$(python3 -c 'import secrets;print(secrets.token_hex(8))')
b64=$(printf '%s:%s' "$user" "$pass" | base64 -w0)

echo "== seed $USERS extensions, $TRUNKS trunks" >&2
DATABASE_URL="$db" FSPLANE_FERNET_KEYS="$key" "$work/bench" seed -users "$USERS" -trunks "$TRUNKS"

p1=$(freeport)
echo "== fsplane serve on 127.0.0.1:$p1" >&2
env DATABASE_URL="$db" FSPLANE_FERNET_KEYS="$key" FSPLANE_XMLCURL_USER="$user" FSPLANE_XMLCURL_PASSWORD="$pass" \
  FSPLANE_LISTEN="127.0.0.1:$p1" FSPLANE_DATA_DIR="$work/data" FSPLANE_LOG_LEVEL=warn \
  FSPLANE_EXTERNAL_IPV4=192.0.2.10 FSPLANE_EXTERNAL_IPV6=2001:db8::10 \
  "$work/fsplane" serve 2>"$work/serve.log" &
pids+=($!)
fs_pid=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$p1/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$p1/healthz" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

metric() { # kind result
  curl -s "http://127.0.0.1:$p1/metrics" |
    awk -v k="$1" -v r="$2" '$1 == "fsplane_xmlcurl_requests_total{kind=\""k"\",result=\""r"\"}" {print $2; f=1} END {if (!f) print 0}'
}

tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_wrk() { # label url threads conns duration mode offset server-pid
  local out before after n
  before=$(cpu_ticks "$8")
  out=$(wrk -t"$3" -c"$4" -d"$5" --latency -s "$here/sipauth.lua" "$2" -- "$6" "$USERS" "$3" "$b64" "${7:-0}")
  after=$(cpu_ticks "$8")
  echo "$out" >"$work/wrk-$1.txt"
  n=$(echo "$out" | sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p')
  # Server CPU per request: what the server itself spends, whatever wrk and
  # other processes take from the shared CPUs.
  echo "$out" | grep '^RESULT' | sed "s/^RESULT/$1/; s/\$/ cpu_us=$(( (after - before) * 1000000 / tck / (n > 0 ? n : 1) ))/"
}

echo "== cold: cache empty, each request a new user" >&2
cold1=$(run_wrk cold-c1 "http://127.0.0.1:$p1" 1 1 "$COLD_DURATION" seq 0 "$fs_pid")
cold4=$(run_wrk cold-c4 "http://127.0.0.1:$p1" 2 4 "$COLD_DURATION" seq $((USERS / 2)) "$fs_pid")
cold_hits=$(metric user hit)

echo "== warm the cache: every user once" >&2
"$work/bench" warm -url "http://127.0.0.1:$p1" -users "$USERS" -auth "$user:$pass"
size=$(curl -s -u "$user:$pass" --data-binary "hostname=vm&section=directory&tag_name=domain&key_name=name&key_value=bench.example&Event-Name=REQUEST_PARAMS&action=sip_auth&key=id&user=10000&domain=bench.example" \
  "http://127.0.0.1:$p1/api/v1/sip/xml-curl" | wc -c)

p2=$(freeport)
echo "== fixed-body net/http server on 127.0.0.1:$p2 ($size bytes)" >&2
"$work/bench" fixed -listen "127.0.0.1:$p2" -size "$size" &
pids+=($!)
fixed_pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$p2/" && break; sleep 0.05; done

p3=$(freeport)
echo "== xmlcurl.Handler alone on a bare net/http server, 127.0.0.1:$p3" >&2
DATABASE_URL="$db" FSPLANE_FERNET_KEYS="$key" "$work/bench" handler -listen "127.0.0.1:$p3" -auth "$user:$pass" &
pids+=($!)
handler_pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$p3/" && break; sleep 0.05; done
"$work/bench" warm -url "http://127.0.0.1:$p3" -users "$USERS" -auth "$user:$pass"

misses_before=$(metric user miss)
echo "== warm: random users, $THREADS threads, $CONNS connections, $DURATION each, $REPEAT rounds" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
warm_runs=() base_runs=() hand_runs=()
for i in $(seq 1 "$REPEAT"); do
  warm_runs+=("$(run_wrk "fsplane-warm-$i" "http://127.0.0.1:$p1" "$THREADS" "$CONNS" "$DURATION" random 0 "$fs_pid")")
  base_runs+=("$(run_wrk "fixed-body-$i" "http://127.0.0.1:$p2" "$THREADS" "$CONNS" "$DURATION" random 0 "$fixed_pid")")
  hand_runs+=("$(run_wrk "handler-only-$i" "http://127.0.0.1:$p3" "$THREADS" "$CONNS" "$DURATION" random 0 "$handler_pid")")
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
misses_after=$(metric user miss)

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
med() { # field runs...
  local f=$1; shift
  for r in "$@"; do field "$r" "$f"; done | median
}
echo
echo "xml-curl benchmark: $USERS extensions, $TRUNKS trunks, PostgreSQL; answer $size bytes; $(nproc) CPUs shared by wrk and the servers"
echo "load average before/after the warm rounds: $load_before / $load_after"
printf '%-16s %10s %10s %10s %12s %8s\n' run req/s p50_us p99_us server_cpu_us non2xx
for r in "$cold1" "$cold4" "${warm_runs[@]}" "${base_runs[@]}" "${hand_runs[@]}"; do
  printf '%-16s %10s %10s %10s %12s %8s\n' "${r%% *}" "$(field "$r" rps)" "$(field "$r" p50_us)" "$(field "$r" p99_us)" "$(field "$r" cpu_us)" "$(field "$r" non2xx)"
done
wr=$(med rps "${warm_runs[@]}") br=$(med rps "${base_runs[@]}")
ratio=$(python3 -c "print(f'{$wr/$br:.2f}')")
echo
echo "warm, median of $REPEAT: fsplane $wr req/s (p99 $(med p99_us "${warm_runs[@]}") us), fixed body $br req/s (p99 $(med p99_us "${base_runs[@]}") us)"
echo "warm ratio fsplane/fixed: $ratio (target >= 0.8)"
hr=$(med rps "${hand_runs[@]}")
echo "xmlcurl.Handler alone on the same bare server as the baseline: $hr req/s, ratio $(python3 -c "print(f'{$hr/$br:.2f}')")"
echo "median server CPU per request: fsplane $(med cpu_us "${warm_runs[@]}") us, handler alone $(med cpu_us "${hand_runs[@]}") us, fixed body $(med cpu_us "${base_runs[@]}") us"
echo "cold p99: $(field "$cold1" p99_us) us at 1 connection, $(field "$cold4" p99_us) us at 4 (target < 5000 us)"
echo "cache hits during the cold runs: $cold_hits (must be 0); misses during the warm runs: $((misses_after - misses_before)) (must be 0)"
