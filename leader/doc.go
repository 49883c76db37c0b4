// Package leader elects one replica among the fsplane processes that share
// a database: exactly one of them holds the leadership of a task (the ESL
// manager, which must be the only one to drive FreeSWITCH) at a time.
//
// # Contract
//
//   - On PostgreSQL, leadership is a session advisory lock
//     (pg_try_advisory_lock) keyed by the task's name and current_schema(),
//     so replicas on separate schemas of one server do not exclude each
//     other. It is taken on a connection of its own, opened with pgx and
//     never pooled: a pool recycles connections, and a recycled connection
//     silently drops a session lock.
//   - A replica that does not lead tries to take the lock every Interval
//     (1 s). The one that leads checks every Interval, within CheckTimeout
//     (1 s), that its session still holds the lock; a failed or timed-out
//     check or a lost connection steps it down at once: the context of the
//     task ends, and Run waits for the task to return before it tries
//     again.
//   - A replica that takes the lock waits Settle (Interval + CheckTimeout,
//     2 s) before it starts the task: a former leader whose session
//     PostgreSQL ended (pg_terminate_backend, a restart) notices within
//     that time and stops, so two replicas never drive at once unless a
//     process stalls for longer. A leader that dies (kill -9) releases the
//     lock with its session: PostgreSQL sees the TCP connection close, and
//     another replica leads within Interval + Settle (at most about 3 s)
//     of the death (BenchmarkFailover).
//   - Who leads is visible: each replica's session carries its ID as
//     application_name ("fsplane <id>"), and a follower reads the holder's
//     from pg_locks and pg_stat_activity. Status gives this replica's ID,
//     whether it leads, and the leader's ID; the metrics
//     fsplane_leader_leading{task,replica} and
//     fsplane_leader_elections_total say the same to Prometheus.
//   - Without a database URL (SQLite: one process owns the file) the
//     replica leads at once and for as long as Run lasts.
//
// # Not handled
//
// A leader cut off from PostgreSQL by the network (no FIN, no RST) steps
// down after its check times out, but PostgreSQL keeps its session, and so
// the lock, until TCP keepalive ends it: failover then takes as long as the
// server's tcp_keepalives settings say.
package leader
