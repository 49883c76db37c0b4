package xmlcurl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// discardWriter is the cheapest http.ResponseWriter, so the benchmarks
// measure the handler, not httptest's recorder.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func benchFixture(b testing.TB, backend string, users int) *fixture {
	f := newFixture(b, backend, Options{})
	ctx := context.Background()
	for i := 0; i < users; i++ {
		if err := f.s.CreateExtension(ctx, &models.Extension{Domain: "127.0.0.1", UserID: fmt.Sprint(1000 + i),
			Password: ptr(fmt.Sprintf("pw-%d", i)), DisplayName: "User", Context: "default", Enabled: true}); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

func serveBody(b *testing.B, h *Handler, body string) {
	r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	r.SetBasicAuth(testBasicUser, testBasicPass)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.code != http.StatusOK || w.n < 500 {
		b.Fatalf("status %d, %d bytes", w.code, w.n)
	}
}

// BenchmarkSipAuthWarm: a REGISTER's lookup answered from the cache.
func BenchmarkSipAuthWarm(b *testing.B) {
	f := benchFixture(b, "sqlite", 1)
	body := capturedBodies(b)["register.txt"][0]
	serveBody(b, f.h, body)
	b.ReportAllocs()
	for b.Loop() {
		serveBody(b, f.h, body)
	}
}

// BenchmarkSipAuthCold: every lookup misses the cache (the user's entry is
// invalidated first): database query, Fernet decryption, render.
func BenchmarkSipAuthCold(b *testing.B) {
	for _, backend := range modelstest.Backends {
		b.Run(backend, func(b *testing.B) {
			const users = 200
			f := benchFixture(b, backend, users)
			bodies := make([]string, users)
			for i := range bodies {
				bodies[i] = sipAuth(fmt.Sprint(1000+i), "127.0.0.1")
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				u := i % users
				f.h.OnChange(models.ChangeEvent{Kind: models.KindExtension, Name: fmt.Sprintf("%d@127.0.0.1", 1000+u)})
				serveBody(b, f.h, bodies[u])
				i++
			}
			if f.count(kindUser, resultHit) != 0 {
				b.Fatal("a cold lookup hit the cache")
			}
		})
	}
}

func BenchmarkParseRequest(b *testing.B) {
	body := capturedBodies(b)["register.txt"][0]
	b.ReportAllocs()
	for b.Loop() {
		if r := ParseRequest(body); r.User != "1000" {
			b.Fatal(r.User)
		}
	}
}

// rewindReader is a request body that can be replayed without allocating.
type rewindReader struct {
	s   string
	off int
}

func (r *rewindReader) Read(p []byte) (int, error) {
	if r.off >= len(r.s) {
		return 0, io.EOF
	}
	n := copy(p, r.s[r.off:])
	r.off += n
	return n, nil
}

func (r *rewindReader) Close() error { return nil }

// BenchmarkSipAuthWarmHandler: only Handler.ServeHTTP on a pre-built
// request, so the allocations shown are the handler's own.
func BenchmarkSipAuthWarmHandler(b *testing.B) {
	f := benchFixture(b, "sqlite", 1)
	benchWarm(b, f, func(r *http.Request) { r.SetBasicAuth(testBasicUser, testBasicPass) })
}

// benchWarm measures ServeHTTP alone on the captured REGISTER, replayed
// from one request authenticated by authorize, after a first (cold) answer.
func benchWarm(b *testing.B, f *fixture, authorize func(*http.Request)) {
	body := capturedBodies(b)["register.txt"][0]
	rd := &rewindReader{s: body}
	r := httptest.NewRequest(http.MethodPost, Path, nil)
	authorize(r)
	r.Body = rd
	r.ContentLength = int64(len(body))
	w := &discardWriter{h: http.Header{}}
	f.h.ServeHTTP(w, r)
	if w.code != http.StatusOK || w.n < 500 {
		b.Fatalf("status %d, %d bytes", w.code, w.n)
	}
	b.ReportAllocs()
	for b.Loop() {
		rd.off = 0
		w.code, w.n = 0, 0
		f.h.ServeHTTP(w, r)
	}
	if w.code != http.StatusOK || w.n < 500 {
		b.Fatalf("status %d, %d bytes", w.code, w.n)
	}
	if f.count(kindUser, resultHit) == 0 {
		b.Fatal("no cache hit")
	}
}

// BenchmarkSipAuthWarmBigCache: ServeHTTP alone, in parallel, for random
// users of a cache holding 100,000 answers the size of a real one (about
// bench/xmlcurl's setting): map lookups and answer reads miss the CPU
// caches and the garbage collector marks a large heap, as in production.
func BenchmarkSipAuthWarmBigCache(b *testing.B) {
	const users = 100_000
	f := newFixture(b, "sqlite", Options{})
	tmpl := capturedBodies(b)["register.txt"][0]
	bodies := make([]string, users)
	for i := range users {
		u := fmt.Sprint(1000 + i)
		bodies[i] = strings.ReplaceAll(tmpl, "=1000&", "="+u+"&")
		doc := fmt.Appendf(nil, "<document>%s%s</document>", u, strings.Repeat("x", 780))
		f.h.c.users.put(userKey{domain: "127.0.0.1", user: u}, newAnswer(doc))
	}
	if r := ParseRequest(bodies[7]); r.User != "1007" {
		b.Fatalf("body template: user %q", r.User)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rd := &rewindReader{}
		r := httptest.NewRequest(http.MethodPost, Path, nil)
		r.SetBasicAuth(testBasicUser, testBasicPass)
		r.Body = rd
		w := &discardWriter{h: http.Header{}}
		n := uint32(len(bodies))
		x := uint32(time.Now().UnixNano()) | 1
		for pb.Next() {
			x ^= x << 13 // xorshift: a cheap random user
			x ^= x >> 17
			x ^= x << 5
			rd.s, rd.off = bodies[x%n], 0
			r.ContentLength = int64(len(rd.s))
			w.code, w.n = 0, 0
			f.h.ServeHTTP(w, r)
			if w.code != http.StatusOK || w.n < 800 {
				b.Errorf("status %d, %d bytes", w.code, w.n)
				return
			}
		}
	})
	if f.count(kindUser, resultMiss) != 0 {
		b.Fatal("a lookup missed the cache")
	}
}

// BenchmarkSipAuthWarmHandlerBearer: BenchmarkSipAuthWarmHandler with an
// xmlcurl-scoped bearer token instead of HTTP Basic.
func BenchmarkSipAuthWarmHandlerBearer(b *testing.B) {
	f := benchFixture(b, "sqlite", 1)
	f.h.verifier = verifier(f.s)
	token := mintToken(b, f.s, auth.ScopeXMLCurl)
	benchWarm(b, f, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
}

// mintToken stores a new token with scopes and returns its text.
func mintToken(t testing.TB, s *models.Store, scopes ...string) string {
	t.Helper()
	text, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(context.Background(), &models.APIToken{Name: "t", Hash: auth.Hash(text), Scopes: scopes}); err != nil {
		t.Fatal(err)
	}
	return text
}
