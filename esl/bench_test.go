package esl_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
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

// percentiles reports p50, p99 and max of d in milliseconds.
func percentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	b.ReportMetric(ms(d[min(len(d)-1, len(d)/2)]), "p50-ms")
	b.ReportMetric(ms(d[min(len(d)-1, int(0.99*float64(len(d))))]), "p99-ms")
	b.ReportMetric(ms(d[len(d)-1]), "max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReconnectDelay kills the node 20 times at a random moment
// (0-1 s after it was synced), keeps it down for a random 0-4 s, restarts
// it, and measures the delay from the node accepting connections again to
// fsplane's `auth` arriving. Default settings (reconnect backoff 500 ms to
// 30 s, probes every 1 s) against the backoff alone (the behaviour before
// probes). Run with -benchtime=1x: one iteration is 20 restarts.
func BenchmarkReconnectDelay(b *testing.B) {
	for _, c := range []struct {
		name  string
		probe time.Duration
	}{{"probe-1s", 0}, {"backoff-only", -1}} {
		b.Run(c.name, func(b *testing.B) {
			w := newWorld(b, "sqlite")
			srv := runbookServer(b, esltest.Options{})
			m, _ := w.run(esl.Options{Nodes: []string{srv.Addr()}, Password: "ClueCon", Store: w.store, ProbeInterval: c.probe})
			synced(b, srv)
			auth := make(chan time.Time, 16)
			srv.OnAuth(func(at time.Time) { auth <- at })
			rng := rand.New(rand.NewPCG(1, 2))
			var delays []time.Duration
			for range b.N {
				for range 20 {
					waitFor(b, "synced", func() bool {
						st := nodeStatus(m, srv.Addr())
						return st.State == esl.StateConnected && st.Pending == 0
					})
					time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
					srv.Kill()
					time.Sleep(time.Duration(rng.Int64N(int64(4 * time.Second))))
					for len(auth) > 0 {
						<-auth
					}
					if err := srv.Restart(); err != nil {
						b.Fatal(err)
					}
					accepting := time.Now()
					select {
					case at := <-auth:
						delays = append(delays, at.Sub(accepting))
					case <-time.After(time.Minute):
						b.Fatal("no auth within a minute")
					}
				}
			}
			percentiles(b, delays)
		})
	}
}

// extensions creates n extensions and returns them for updating.
func (w *world) extensions(n int) []*models.Extension {
	w.t.Helper()
	out := make([]*models.Extension, n)
	for i := range n {
		pw := "initial"
		out[i] = &models.Extension{Domain: "pbx.example.com", UserID: fmt.Sprintf("%d", 1000+i), Password: &pw, Enabled: true, Context: "default"}
		if err := w.store.CreateExtension(w.ctx, out[i]); err != nil {
			w.t.Fatal(err)
		}
	}
	return out
}

// updateAll changes every extension's password once (each update owes one
// xml_flush_cache).
func (w *world) updateAll(exts []*models.Extension, round int) {
	w.t.Helper()
	for i, e := range exts {
		pw := fmt.Sprintf("pw-%d-%d", round, i)
		e.Password = &pw
		if err := w.store.UpdateExtension(w.ctx, e); err != nil {
			w.t.Fatal(err)
		}
	}
}

// flushCounter signals the moment the nth xml_flush_cache since reset
// arrived.
type flushCounter struct {
	n, want atomic.Int64
	last    chan time.Time
}

func countFlushes(srv *esltest.Server) *flushCounter {
	f := &flushCounter{last: make(chan time.Time, 1)}
	srv.OnCommand(func(line string, at time.Time) {
		if strings.HasPrefix(line, "api xml_flush_cache ") && f.n.Add(1) == f.want.Load() {
			f.last <- at
		}
	})
	return f
}

func (f *flushCounter) reset(want int) { f.n.Store(0); f.want.Store(int64(want)) }

func (f *flushCounter) wait(b *testing.B) time.Time {
	select {
	case at := <-f.last:
		return at
	case <-time.After(time.Minute):
		b.Fatalf("only %d of %d flushes within a minute", f.n.Load(), f.want.Load())
		return time.Time{}
	}
}

// BenchmarkFlushAfterReconnect: N extension updates made while the node is
// down are flushed after it comes back; the figure is the time from
// fsplane's `auth` to the last xml_flush_cache on the wire (the sync's
// checks and rescans come first). Default settings.
func BenchmarkFlushAfterReconnect(b *testing.B) {
	for _, n := range []int{500, 1000} {
		b.Run(fmt.Sprintf("updates-%d", n), func(b *testing.B) {
			w := newWorld(b, "sqlite")
			exts := w.extensions(n)
			srv := runbookServer(b, esltest.Options{})
			m, _ := w.run(esl.Options{Nodes: []string{srv.Addr()}, Password: "ClueCon", Store: w.store})
			synced(b, srv)
			flushes := countFlushes(srv)
			auth := make(chan time.Time, 16)
			srv.OnAuth(func(at time.Time) { auth <- at })
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				srv.Kill()
				waitFor(b, "node down", func() bool { return nodeStatus(m, srv.Addr()).State != esl.StateConnected })
				w.updateAll(exts, i)
				last, _ := w.store.LastChangeID(w.ctx)
				waitFor(b, "updates folded", func() bool { return m.SeenChangeID(srv.Addr()) >= last })
				flushes.reset(n)
				for len(auth) > 0 {
					<-auth
				}
				b.StartTimer()
				if err := srv.Restart(); err != nil {
					b.Fatal(err)
				}
				at := <-auth
				lat = append(lat, flushes.wait(b).Sub(at))
			}
			b.StopTimer()
			percentiles(b, lat)
		})
	}
}

// BenchmarkLiveBurst: 1,000 extension updates while the node is connected,
// one after the other as the API writes them; the figure is the time from
// the last write's return (the API's answer) to the last xml_flush_cache on
// the wire. Target: at most 1 s. Default settings.
func BenchmarkLiveBurst(b *testing.B) {
	const n = 1000
	w := newWorld(b, "sqlite")
	exts := w.extensions(n)
	srv := runbookServer(b, esltest.Options{})
	m, _ := w.run(esl.Options{Nodes: []string{srv.Addr()}, Password: "ClueCon", Store: w.store})
	synced(b, srv)
	flushes := countFlushes(srv)
	var lat, burst []time.Duration
	b.ResetTimer()
	for i := range b.N {
		waitFor(b, "idle", func() bool { return nodeStatus(m, srv.Addr()).Pending == 0 })
		flushes.reset(n)
		start := time.Now()
		w.updateAll(exts, i)
		answered := time.Now()
		lat = append(lat, flushes.wait(b).Sub(answered))
		burst = append(burst, answered.Sub(start))
	}
	b.StopTimer()
	slices.Sort(burst)
	b.ReportMetric(float64(burst[len(burst)/2])/float64(time.Millisecond), "burst-ms")
	percentiles(b, lat)
}
