package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkGetTrunk is one authenticated read: token lookup, row read,
// JSON encoding.
func BenchmarkGetTrunk(b *testing.B) {
	ev := newEnv(b, "sqlite")
	tok := ev.tokens["sip:read"]
	req := func() *http.Request {
		r := httptest.NewRequest("GET", "/api/v1/sip/trunks/plusnet", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	create := httptest.NewRequest("POST", "/api/v1/sip/trunks", strings.NewReader(`{"preset":"plusnet","name":"plusnet"}`))
	create.Header.Set("Authorization", "Bearer "+ev.tokens["admin"])
	create.Header.Set("Content-Type", "application/json")
	ev.e.ServeHTTP(httptest.NewRecorder(), create)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		ev.e.ServeHTTP(rec, req())
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkCreateTrunk is one validated write: strict decode, the
// provider-aware rules (profile and range reads), the store's transaction
// with change and audit events.
func BenchmarkCreateTrunk(b *testing.B) {
	ev := newEnv(b, "sqlite")
	tok := ev.tokens["sip:write"]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := fmt.Sprintf(`{"preset":"1und1","name":"t%d","username":"u%d","password":"secret","numbers":["+49345%d"]}`, i, i, 100000+i)
		r := httptest.NewRequest("POST", "/api/v1/sip/trunks", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		ev.e.ServeHTTP(rec, r)
		if rec.Code != 201 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
