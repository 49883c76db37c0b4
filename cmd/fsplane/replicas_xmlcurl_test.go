package main

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/secrets"
)

// regexpID finds a created row's id in its JSON answer.
var regexpID = regexp.MustCompile(`"id":\s*(\d+)`)

// replicaSet starts n `fsplane serve` processes on one fresh PostgreSQL
// schema, without FreeSWITCH nodes; it returns them and the admin token.
func replicaSet(t testing.TB, n int) ([]*replicaProc, string) {
	t.Helper()
	return replicaSetWith(t, n, nil)
}

// replicaSetWith is replicaSet with per-replica settings: each(i) adds to
// replica i's environment (nil: nothing).
func replicaSetWith(t testing.TB, n int, each func(i int) map[string]string) ([]*replicaProc, string) {
	t.Helper()
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	store := modelstest.Open(t, "postgres", modelstest.Options{Keys: kr, NoMigrate: true})
	env := map[string]string{
		"DATABASE_URL":             modelstest.URLOf(t, store),
		"FSPLANE_FERNET_KEYS":      key,
		"FSPLANE_EXTERNAL_IPV4":    "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":    "2a01:4f8:140:829d::2",
		"FSPLANE_XMLCURL_USER":     "fs",
		"FSPLANE_XMLCURL_PASSWORD": "fs-secret",
	}
	envOf := func(i int) map[string]string {
		if each == nil {
			return env
		}
		e := maps.Clone(env)
		maps.Copy(e, each(i))
		return e
	}
	first := startReplica(t, "A", envOf(0))
	token := tokenRe.FindString(first.stderr.String())
	if token == "" {
		t.Fatalf("no admin token at first start:\n%s", first.stderr.String())
	}
	out := make([]*replicaProc, n)
	out[0] = first
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = startReplica(t, string(rune('A'+i)), envOf(i)) }()
	}
	wg.Wait()
	for _, p := range out {
		if p == nil {
			t.FailNow()
		}
	}
	return out, token
}

// displayName is the effective_caller_id_name replica p's xml-curl answers
// for user@domain ("" when it does not know the user).
func (p *replicaProc) displayName(t testing.TB, user, domain string) string {
	t.Helper()
	s := p.directoryXML(t, user, domain)
	const marker = `name="effective_caller_id_name" value="`
	i := strings.Index(s, marker)
	if i < 0 {
		return ""
	}
	s = s[i+len(marker):]
	return s[:strings.IndexByte(s, '"')]
}

// TestReplicasServeEachOthersWrites: a write through replica A changes
// the xml-curl answers of replicas B and C, although each had cached the
// old one (the change feed: pg_notify, then the follower).
func TestReplicasServeEachOthersWrites(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts processes")
	}
	rs, token := replicaSet(t, 3)
	a := rs[0]
	code, body := do(t, http.MethodPost, a.base+"/api/v1/sip/extensions", token, "application/json",
		`{"domain": "pbx.example.com", "user_id": "1001", "password": "change-me-1001", "display_name": "Desk"}`)
	if code != http.StatusCreated {
		t.Fatalf("create through A: %d %s", code, body)
	}
	id := regexpID.FindStringSubmatch(body)[1]
	waitAll := func(want string) {
		t.Helper()
		for _, p := range rs {
			deadline := time.Now().Add(10 * time.Second)
			for p.displayName(t, "1001", "pbx.example.com") != want {
				if time.Now().After(deadline) {
					t.Fatalf("replica %s still answers %q, want %q", p.name, p.displayName(t, "1001", "pbx.example.com"), want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	waitAll("Desk") // now cached everywhere
	code, body = do(t, http.MethodPatch, a.base+"/api/v1/sip/extensions/"+id, token, "application/json", `{"display_name": "Front Desk"}`)
	if code != http.StatusOK {
		t.Fatalf("update through A: %d %s", code, body)
	}
	waitAll("Front Desk")
}

// BenchmarkWriteOnAServedByB: an API write on replica A until replica B's
// xml-curl serves the new answer (B had the old one cached), over b.N
// writes; reports p50 and p99. `go test -run '^$' -bench WriteOnAServedByB
// -benchtime 500x ./cmd/fsplane` (with FSPLANE_TEST_DATABASE_URL).
func BenchmarkWriteOnAServedByB(b *testing.B) {
	rs, token := replicaSet(b, 2)
	a, rb := rs[0], rs[1]
	code, body := do(b, http.MethodPost, a.base+"/api/v1/sip/extensions", token, "application/json",
		`{"domain": "pbx.example.com", "user_id": "1001", "password": "change-me-1001", "display_name": "v0"}`)
	if code != http.StatusCreated {
		b.Fatalf("create: %d %s", code, body)
	}
	id := regexpID.FindStringSubmatch(body)[1]
	for rb.displayName(b, "1001", "pbx.example.com") != "v0" {
		time.Sleep(5 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		want := fmt.Sprintf("v%d", i+1)
		start := time.Now()
		if code, body := do(b, http.MethodPatch, a.base+"/api/v1/sip/extensions/"+id, token, "application/json",
			`{"display_name": "`+want+`"}`); code != http.StatusOK {
			b.Fatalf("update: %d %s", code, body)
		}
		deadline := start.Add(10 * time.Second)
		for rb.displayName(b, "1001", "pbx.example.com") != want {
			if time.Now().After(deadline) {
				b.Fatalf("B never served %s", want)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
