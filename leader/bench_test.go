package leader_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/fsplane/fsplane/leader"
)

// BenchmarkFailover: with the default Interval and Settle, the time from
// the leader's session ending (pg_terminate_backend, as PostgreSQL ends
// the session of a killed process) to the other replica leading. Reported
// as failover_ms per op.
func BenchmarkFailover(b *testing.B) {
	url := schemaURLB(b)
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		var els []*leader.Elector
		done := make(chan struct{}, 2)
		for _, id := range []string{"bench-a", "bench-b"} {
			el, err := leader.New(leader.Options{DatabaseURL: url, Task: "esl", ID: id})
			if err != nil {
				b.Fatal(err)
			}
			els = append(els, el)
			go func() {
				_ = el.Run(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
				done <- struct{}{}
			}()
		}
		var lead, other *leader.Elector
		for lead == nil {
			time.Sleep(5 * time.Millisecond)
			switch {
			case els[0].Status().Leading:
				lead, other = els[0], els[1]
			case els[1].Status().Leading:
				lead, other = els[1], els[0]
			}
		}
		// Let the follower settle into its polling rhythm.
		time.Sleep(time.Second)
		start := time.Now()
		if _, err := db.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
			"fsplane "+lead.Status().Replica); err != nil {
			b.Fatal(err)
		}
		for !other.Status().Leading {
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
		cancel()
		<-done
		<-done
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "failover_ms/op")
}
