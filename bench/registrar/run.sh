#!/usr/bin/env bash
# REGISTER benchmark of fsplane's registrar against Kamailio 5.6. Run by
# hand, not in CI (Debian packages sip-tester and kamailio):
#
#   bench/registrar/run.sh
#
# Seeds USERS extensions (SQLite), starts `fsplane serve` with the
# registrar and Kamailio (usrloc in memory, passwords in an htable, 2
# children: the fair in-memory setup; -M 256 so that the htable fill of
# USERS lines fits in private memory), and drives both with sipp: REGISTER,
# 401, REGISTER with MD5 digest, 200, one user after the other, at stepped
# rates (RATES, DURATION seconds each), fsplane and Kamailio interleaved,
# ROUNDS times. A rate is held with 0 failed registrations and a mean
# response time (first REGISTER to 200) of at most 50 ms. Prints per step
# the rate, failures, mean response time and the server's CPU per
# registration (utime+stime of all its threads and processes, /proc), the
# highest held rate of each per round, and the ratio. Then a storm: USERS
# endpoints re-registering within 10 s against fsplane, 0 lost.
#
# sipp's socket buffers are SIPP_BUFFER bytes (default 4 MiB, capped by
# net.core.rmem_max): with the default 208 KiB, sipp (one thread, busy
# sending) dropped responses that arrived in a burst, and the
# retransmission 500 ms later, not the server, set the mean.
set -euo pipefail

USERS=${USERS:-10000}
RATES=${RATES:-"1000 2000 4000 6000 8000 10000 12000 14000 16000 18000 20000 22000 24000 26000 28000 30000"}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
STORM_SECONDS=${STORM_SECONDS:-10}
SIPP_BUFFER=${SIPP_BUFFER:-4194304}

for c in sipp kamailio curl python3; do
  command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || { echo "run.sh: $c missing (apt-get install sip-tester kamailio curl)" >&2; exit 1; }
done
KAMAILIO=$(command -v kamailio || echo /usr/sbin/kamailio)

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/registrar"
work=$(mktemp -d /tmp/registrar-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

freeport() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
tck=$(getconf CLK_TCK)
# cpu PID: utime+stime in ticks of PID and its child processes.
cpu() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    if [ -r "/proc/$p/stat" ]; then
      total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    fi
  done
  echo "$total"
}

echo "== build and seed $USERS users" >&2
(cd "$root" && go build -o "$work/fsplane" ./cmd/fsplane && go build -o "$work/helper" ./bench/registrar)
export FSPLANE_FERNET_KEYS=$("$work/fsplane" keys generate)
export FSPLANE_DATA_DIR="$work/data"
mkdir -p "$FSPLANE_DATA_DIR"
"$work/helper" seed -users "$USERS" -dir "$work"

fsport=$(freeport)
kport=$(freeport)
httpport=$(freeport)
FSPLANE_LISTEN=127.0.0.1:$httpport FSPLANE_LOG_LEVEL=warn \
  FSPLANE_EXTERNAL_IPV4=192.0.2.10 FSPLANE_EXTERNAL_IPV6=2001:db8::10 \
  FSPLANE_REGISTRAR_LISTEN=127.0.0.1:$fsport FSPLANE_REGISTRAR_DIGEST_ALGORITHMS=MD5 \
  FSPLANE_REGISTRAR_MAX_BINDINGS=$((USERS * 2)) \
  "$work/fsplane" serve >"$work/serve.log" 2>&1 &
fspid=$!
pids+=("$fspid")
sed -e "s/LISTEN/127.0.0.1:$kport/" -e "s#USERS#$work/kamailio-users.cfg#" "$here/kamailio.cfg" >"$work/kamailio.cfg"
"$KAMAILIO" -f "$work/kamailio.cfg" -M 256 -m 512 -DD -E -w "$work" -P "$work/kamailio.pid" >"$work/kamailio.log" 2>&1 &
kpid=$!
pids+=("$kpid")
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$httpport/healthz" >/dev/null 2>&1 && grep -q "registrar listening" "$work/serve.log" 2>/dev/null && break
  sleep 0.1
done
sleep 1
kill -0 "$kpid" || { cat "$work/kamailio.log" >&2; exit 1; }

# step NAME PORT PID RATE CALLS: one sipp run; prints "ok|fail rate failed mean_ms cpu_us_per_reg".
step() {
  local name=$1 port=$2 pid=$3 rate=$4 calls=$5 d="$work/$1-$4-$RANDOM"
  mkdir -p "$d"
  local c0 c1
  c0=$(cpu "$pid")
  (cd "$d" && sipp -sf "$here/register.xml" -inf "$work/users.csv" -t u1 -i 127.0.0.1 -r "$rate" -m "$calls" \
     -l $((rate * 2)) -timeout $((calls / rate + 20))s -nostdin -trace_stat -stf stat.csv -fd 3600 -buff_size "$SIPP_BUFFER" \
     -trace_rtt -rtt_freq 1 "127.0.0.1:$port" >sipp.out 2>&1) || true
  c1=$(cpu "$pid")
  local ok failed mean
  read -r ok failed < <(python3 - "$d/stat.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, last = rows[0], rows[-1]
print(last[h.index("SuccessfulCall(C)")], last[h.index("FailedCall(C)")])
PY
)
  mean=$(cat "$d"/*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ {s += $2; n++} END {if (n) printf "%.1f", s / n; else print "nan"}')
  local cpuus=nan
  if [ "$ok" -gt 0 ]; then cpuus=$(( (c1 - c0) * 1000000 / tck / ok )); fi
  local verdict=fail
  if [ "$failed" = 0 ] && [ "$ok" = "$calls" ] && [ "$mean" != nan ] && awk "BEGIN{exit !($mean <= 50)}"; then verdict=ok; fi
  echo "$verdict $rate $ok $failed $mean $cpuus"
}

declare -A best
printf '%-6s %-9s %6s %8s %7s %9s %14s\n' round server rate ok failed mean_ms cpu_us_per_reg
for round in $(seq "$ROUNDS"); do
  best[fsplane-$round]=0
  best[kamailio-$round]=0
  stopped_f=0 stopped_k=0
  for rate in $RATES; do
    calls=$((rate * DURATION))
    for srv in fsplane kamailio; do
      if [ "$srv" = fsplane ]; then
        [ "$stopped_f" = 1 ] && continue
        read -r v r ok failed mean cpuus < <(step fsplane "$fsport" "$fspid" "$rate" "$calls")
      else
        [ "$stopped_k" = 1 ] && continue
        read -r v r ok failed mean cpuus < <(step kamailio "$kport" "$kpid" "$rate" "$calls")
      fi
      printf '%-6s %-9s %6s %8s %7s %9s %14s %s\n' "$round" "$srv" "$r" "$ok" "$failed" "$mean" "$cpuus" "$v"
      if [ "$v" = ok ]; then
        best[$srv-$round]=$rate
      elif [ "$srv" = fsplane ]; then
        stopped_f=1
      else
        stopped_k=1
      fi
    done
    [ "$stopped_f" = 1 ] && [ "$stopped_k" = 1 ] && break
  done
done
echo
for round in $(seq "$ROUNDS"); do
  f=${best[fsplane-$round]} k=${best[kamailio-$round]}
  ratio=$(awk "BEGIN{ if ($k > 0) printf \"%.2f\", $f / $k; else print \"n/a\" }")
  echo "round $round: highest rate held: fsplane $f/s, kamailio $k/s, ratio fsplane/kamailio $ratio"
done

echo
echo "== storm: $USERS endpoints re-registering within ${STORM_SECONDS}s (fsplane)"
rate=$(( (USERS + STORM_SECONDS - 1) / STORM_SECONDS ))
read -r v r ok failed mean cpuus < <(step storm "$fsport" "$fspid" "$rate" "$USERS")
devices=$(curl -fsS "http://127.0.0.1:$httpport/metrics" | awk '/^fsplane_registrar_registered_devices /{print $2}')
echo "storm: $ok of $USERS re-registered, $failed failed, mean ${mean} ms, registered devices $devices"
