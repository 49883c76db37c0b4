package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// Every answer carries an X-Request-Id of fsplane's own, and the log line
// about the request names it; a client's own id is not taken over.
func TestRequestIDInAnswerAndLog(t *testing.T) {
	ev := newEnv(t, "sqlite")
	r := ev.do("GET", "/api/v1/sip/trunks/no-such-trunk", ev.tokens["sip:read"], nil, hdr{"X-Request-Id": "client\nforged"}).
		want(t, http.StatusNotFound)
	id := r.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Fatalf("X-Request-Id %q", id)
	}
	if !strings.Contains(ev.logs.String(), "request_id="+id) || strings.Contains(ev.logs.String(), "forged") {
		t.Fatalf("log does not name %s, or took the client's id:\n%s", id, ev.logs.String())
	}
	other := ev.do("GET", "/api/v1/sip/trunks", ev.tokens["sip:read"], nil).want(t, http.StatusOK).Header.Get("X-Request-Id")
	if other == "" || other == id {
		t.Fatalf("second request's id %q", other)
	}
}
