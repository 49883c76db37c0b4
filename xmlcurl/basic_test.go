package xmlcurl

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// TestCheckBasicMatchesBasicAuth holds the allocation-free Basic check to
// net/http's parsing: same "is it Basic" answer, and a match exactly when
// r.BasicAuth yields the configured user and password.
func TestCheckBasicMatchesBasicAuth(t *testing.T) {
	h := New(Options{BasicUser: testBasicUser, BasicPassword: testBasicPass})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	good := testBasicUser + ":" + testBasicPass
	headers := []string{
		"", "Basic", "Basic ", "basic " + b64(good), "BASIC " + b64(good), "Basic " + b64(good),
		"Basic  " + b64(good), "Basic " + b64(good) + "=", "Basic " + b64(good)[:5],
		"Basic " + b64(testBasicUser+testBasicPass), "Basic " + b64(good+"x"), "Basic " + b64(":"+good),
		"Basic " + b64(testBasicUser+":"), "Basic " + b64(good+":"), "Bearer " + b64(good),
		"Basic " + b64(good)[:4] + "\r\n" + b64(good)[4:], "Basic !!!!",
		"Basic " + b64(testBasicUser+":"+strings.Repeat("p", 300)),
		"Basic " + b64(good) + strings.Repeat("=", 300),
		// Same length as the expected header, one byte off.
		"Basic " + b64(good[:len(good)-1]+"X"), "Basic " + b64("X"+good[1:]),
	}
	matches := 0
	for _, hv := range headers {
		r, err := http.NewRequest(http.MethodPost, Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hv != "" {
			r.Header.Set("Authorization", hv)
		}
		user, pass, wantOK := r.BasicAuth()
		wantMatch := wantOK && user == testBasicUser && pass == testBasicPass
		match, ok := h.checkBasic(r.Header.Get("Authorization"), r)
		if ok != wantOK || match != wantMatch {
			t.Errorf("%q: checkBasic = (match %v, ok %v), r.BasicAuth says (match %v, ok %v)", hv, match, ok, wantMatch, wantOK)
		}
		if match {
			matches++
		}
	}
	if matches < 3 { // basic, BASIC, Basic, and the one with a line break
		t.Errorf("only %d headers matched", matches)
	}
}
