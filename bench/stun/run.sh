#!/usr/bin/env bash
# Benchmark of the STUN responder against coturn. Run by hand, not in CI:
#
#   bench/stun/run.sh
#
# Starts `fsplane stun serve` and coturn (`turnserver --stun-only`, Debian
# package coturn) on loopback, each with two addresses (127.0.0.1 and
# 127.0.0.2), and drives both with pion's stun-bench (built from the
# pion/stun module at the version go.mod names) from another process:
# interleaved, ROUNDS rounds, at -w 16 and -w 64. The load generator eats
# about one of the two cores, so the fair figure is the server's CPU per
# request: the delta of utime+stime in /proc/PID/stat (all threads) over
# the run, divided by the requests answered (stun-bench's RPS times the
# duration). Prints req/s, CPU µs per request, and fsplane/coturn ratios.
#
# fsplane runs with --rate-limit 0: every request comes from one address.
#
# Tunables: DURATION (default 10s), ROUNDS (2), WORKERS ("16 64").
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
WORKERS=${WORKERS:-16 64}

command -v turnserver >/dev/null || { echo "run.sh: turnserver missing (apt-get install coturn)" >&2; exit 1; }
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/stun-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

pion=$(cd "$root" && go list -m -f '{{.Version}}' github.com/pion/stun/v3)
echo "building fsplane and stun-bench (pion/stun $pion)" >&2
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/fsplane" ./cmd/fsplane)
GOBIN="$work" GOFLAGS=-buildvcs=false go install "github.com/pion/stun/v3/cmd/stun-bench@$pion"

"$work/fsplane" stun serve --primary 127.0.0.1:13478 --secondary 127.0.0.2:13479 --rate-limit 0 --log-level warn 2>"$work/fsplane.log" &
pids+=($!); fs_pid=$!
turnserver -n --stun-only --no-tls --no-dtls --no-cli -L 127.0.0.1 -L 127.0.0.2 -p 23478 --alt-listening-port 23479 \
  --pidfile "$work/turn.pid" --log-file "$work/turn.log" --simple-log --no-stdout-log >/dev/null 2>&1 &
pids+=($!); co_pid=$!
sleep 1
for p in $fs_pid $co_pid; do kill -0 "$p" || { echo "run.sh: a server did not start" >&2; cat "$work"/*.log >&2; exit 1; }; done

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
secs=${DURATION%s}

# run NAME PID PORT W: one measurement, one line.
run() {
  local name=$1 pid=$2 port=$3 w=$4 before after rps
  before=$(cpu "$pid")
  rps=$("$work/stun-bench" -w "$w" -d "$DURATION" -uri "stun:127.0.0.1:$port" 2>&1 | sed -n 's/.*RPS: \([0-9]*\).*/\1/p')
  after=$(cpu "$pid")
  awk -v n="$name" -v w="$w" -v r="$rps" -v c=$((after - before)) -v t="$ticks" -v s="$secs" 'BEGIN {
    us = (r > 0) ? c / t * 1e6 / (r * s) : 0
    printf "%-8s -w %-3s %8d req/s  %6.2f us CPU/req  (%.2f cores)\n", n, w, r, us, c / t / s
  }'
}

printf 'round  server   workers   rate        server CPU per request\n' >&2
results=()
for round in $(seq "$ROUNDS"); do
  for w in $WORKERS; do
    for s in fsplane coturn; do
      if [ "$s" = fsplane ]; then line=$(run fsplane "$fs_pid" 13478 "$w"); else line=$(run coturn "$co_pid" 23478 "$w"); fi
      echo "$round      $line"
      results+=("$line")
    done
  done
done

echo
echo "ratios fsplane/coturn (per round and workers): rate, CPU per request"
for ((i = 0; i < ${#results[@]}; i += 2)); do
  awk -v a="${results[i]}" -v b="${results[i+1]}" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    printf "-w %-3s  rate %.2fx  CPU/req %.2fx\n", x[3], x[4] / y[4], x[6] / y[6]
  }'
done
