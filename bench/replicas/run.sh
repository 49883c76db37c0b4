#!/usr/bin/env bash
# Replica-to-replica freshness. Run by hand, not in CI:
#
#   bench/replicas/run.sh            # WRITES=500 by default
#
# Starts two `fsplane serve` processes on one throwaway PostgreSQL schema
# (scripts/pg-throwaway.sh), writes an extension's display name through
# replica A's API WRITES times, and after each write polls replica B's
# xml-curl until it serves the new name; prints p50 and p99 of write-to-
# served (BenchmarkWriteOnAServedByB in cmd/fsplane). Then the same through
# the change feed alone (BenchmarkChangeAcrossReplicas in events: a commit
# on A until B's subscribers have it, woken by pg_notify, the poll an hour).
# Target: p99 < 100 ms (polling alone gave up to 1 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
WRITES=${WRITES:-500}
exec ./scripts/pg-throwaway.sh bash -c "
  go test -run '^\$' -bench 'BenchmarkWriteOnAServedByB' -benchtime ${WRITES}x ./cmd/fsplane &&
  go test -run '^\$' -bench 'BenchmarkChangeAcrossReplicas' -benchtime ${WRITES}x ./events"
