package esl_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
)

// BenchmarkChangeToCommand measures, with a live connection, the time from
// a trunk update in the store (the API's write) to its first command
// (killgw) arriving on the FreeSWITCH side of the socket. Each iteration
// waits for its rescan too, so iterations do not coalesce. p50 and p99 are
// reported in milliseconds; run with -benchtime=300x for a stable p99.
func BenchmarkChangeToCommand(b *testing.B) {
	for _, c := range []struct {
		name   string
		window time.Duration
	}{{"default-window", 0}, {"window-1ms", time.Millisecond}} {
		b.Run(c.name, func(b *testing.B) {
			w := newWorld(b, "sqlite")
			srv := runbookServer(b, esltest.Options{})
			opt := esl.Options{Nodes: []string{srv.Addr()}, Password: "ClueCon", Store: w.store, CoalesceWindow: c.window}
			w.run(opt)
			synced(b, srv)
			kill := make(chan time.Time, 1)
			rescan := make(chan struct{}, 1)
			srv.OnCommand(func(line string, at time.Time) {
				switch line {
				case "api sofia profile external-ipv4 killgw plusnet":
					kill <- at
				case "api sofia profile external-ipv4 rescan":
					rescan <- struct{}{}
				}
			})
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = fmt.Sprintf("sip%d.plusnet.de", i) })
				select {
				case at := <-kill:
					lat = append(lat, at.Sub(start))
				case <-time.After(10 * time.Second):
					b.Fatal("no killgw within 10s")
				}
				<-rescan
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
