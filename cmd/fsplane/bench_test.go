package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl/esltest"
)

// BenchmarkAPIChangeToCommand measures the whole path the operator sees:
// an HTTP PATCH of a trunk on a running `fsplane serve` until its killgw
// arrives on the FreeSWITCH side of a live event socket (validation, store
// transaction, change event, planner, coalescing window, ESL command).
// Each iteration waits for the rescan too, so iterations do not coalesce.
// Run with -benchtime=200x for a stable p99.
func BenchmarkAPIChangeToCommand(b *testing.B) {
	fs := esltest.Start(b, esltest.Options{})
	env := map[string]string{
		"FSPLANE_DATA_DIR":      b.TempDir(),
		"FSPLANE_EXTERNAL_IPV4": "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6": "2a01:4f8:140:829d::2",
		"FSPLANE_ESL_NODES":     fs.Addr(),
		"FSPLANE_LOG_LEVEL":     "error",
	}
	addr, stderr, _ := startServe(b, env)
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr
	if code, body := do(b, http.MethodPost, base+"/api/v1/sip/trunks", token, "application/json",
		`{"preset":"plusnet","name":"plusnet","numbers":["+493455667290"]}`); code != http.StatusCreated {
		b.Fatalf("create: %d %s", code, body)
	}
	kill := make(chan time.Time, 1)
	rescan := make(chan struct{}, 1)
	fs.OnCommand(func(line string, at time.Time) {
		switch line {
		case "api sofia profile external-ipv4 killgw plusnet":
			select {
			case kill <- at:
			default:
			}
		case "api sofia profile external-ipv4 rescan":
			select {
			case rescan <- struct{}{}:
			default:
			}
		}
	})
	// Let the start-up sync and the create's rescan pass.
	time.Sleep(500 * time.Millisecond)
	for len(rescan) > 0 {
		<-rescan
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		code, body := do(b, http.MethodPatch, base+"/api/v1/sip/trunks/plusnet", token, "application/json",
			fmt.Sprintf(`{"outbound_proxy":"92.197.176.%d"}`, 17+i%2)) // 16 is the preset's: no change
		if code != http.StatusOK {
			b.Fatalf("patch: %d %s", code, body)
		}
		select {
		case at := <-kill:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatalf("no killgw within 10s: %q", fs.Commands())
		}
		select {
		case <-rescan:
		case <-time.After(10 * time.Second):
			b.Fatal("no rescan within 10s")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
