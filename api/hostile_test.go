package api_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/xmlcurl"
)

// TestHostileInputIsRefusedOrRenderedExactly is issue 9's list, through
// the API and on into xml-curl: every value is either a 4xx naming the
// field, or stored and rendered exactly (never left out, never altered).
func TestHostileInputIsRefusedOrRenderedExactly(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		var xc *xmlcurl.Handler
		ev := newEnv(t, backend, envOptions{renderOn: func(s *models.Store) api.Renderer {
			xc = xmlcurl.New(xmlcurl.Options{Store: s, BasicUser: "fs", BasicPassword: "fs-pass"})
			return xc
		}})
		w := ev.tokens["sip:write"]
		ext := func(user, pw, display string) map[string]any {
			b := map[string]any{"domain": "pbx.example.com", "user_id": user, "password": pw}
			if display != "" {
				b["display_name"] = display
			}
			return b
		}

		// Characters no value may carry: a 422 on the field, nothing stored.
		for _, c := range []struct{ field, pw, display string }{
			{"password", "secret-\uffff-pw", ""},
			{"password", "secret-\ufdd0-pw", ""},
			{"password", "secret-\U0010FFFF-pw", ""},
			{"password", "secret\tpw-long", ""},
			{"display_name", "long-enough-pw", "Desk \uffff"},
			{"display_name", "long-enough-pw", "Desk\u0085"},
		} {
			r := ev.do("POST", "/api/v1/sip/extensions", w, ext("2001", c.pw, c.display)).want(t, http.StatusUnprocessableEntity)
			if msg := r.Fields(t)[c.field]; !strings.Contains(msg, "U+") {
				t.Errorf("%q/%q: field %s says %q, want the character named", c.pw, c.display, c.field, msg)
			}
			if strings.Contains(string(r.Body), c.pw) {
				t.Errorf("the refusal repeats the password: %s", r.Body)
			}
		}

		// Bytes that are not UTF-8: 400, the field named.
		raw := []byte("{\"domain\": \"pbx.example.com\", \"user_id\": \"2001\", \"password\": \"secret-\xff\xfe-pw\"}")
		r := ev.do("POST", "/api/v1/sip/extensions", w, raw).want(t, http.StatusBadRequest)
		if f := r.Fields(t); !strings.Contains(f["password"], "UTF-8") {
			t.Errorf("invalid UTF-8: fields %v", f)
		}
		// A lone surrogate escape: 422 on the field (encoding/json would
		// have stored U+FFFD).
		for _, esc := range []string{`\ud800`, `\uDC00x`, `\ud83d\u0041`} {
			body := `{"domain": "pbx.example.com", "user_id": "2001", "password": "secret-` + esc + `-pw"}`
			r := ev.do("POST", "/api/v1/sip/extensions", w, body).want(t, http.StatusUnprocessableEntity)
			if f := r.Fields(t); !strings.Contains(f["password"], "surrogate") {
				t.Errorf("%s: fields %v", esc, f)
			}
		}
		if l := ev.do("GET", "/api/v1/sip/extensions", ev.tokens["sip:read"], nil).want(t, http.StatusOK).JSON(t); l["total"] != float64(0) {
			t.Fatalf("a refused extension was stored: %v", l)
		}

		// Accepted: E.164 user ids, a surrogate pair, everything XML and
		// the pre-processor would act on. Each renders, exactly.
		ids := map[string]string{}
		for _, c := range []struct{ user, pw, display string }{
			{"+493012345", "pair-\U0001F600-" + `"<&>$${x}`, "Müller & Söhne <Empfang>"},
			{"1001", "X-PRE-PROCESS $${hostname} <!--# --> ]]>", "\U0001F9D1\u200d\U0001F4BB Desk"},
		} {
			r := ev.do("POST", "/api/v1/sip/extensions", w, ext(c.user, c.pw, c.display)).want(t, http.StatusCreated)
			got := r.JSON(t)
			if got["render_error"] != nil {
				t.Fatalf("%s: render_error %v", c.user, got["render_error"])
			}
			ids[c.user] = fmt.Sprint(got["id"])
			doc := lookupUser(t, xc, c.user, "pbx.example.com")
			u := doc.FindElement("//domain/user")
			if u == nil || u.SelectAttrValue("id", "") != c.user {
				t.Fatalf("user %s left out of the answer", c.user)
			}
			if got, want := param(doc, "//user/params/param", "a1-hash"), md5hex(c.user+":pbx.example.com:"+c.pw); got != want {
				t.Errorf("%s: a1-hash %s, want %s (the password stored is not the one sent)", c.user, got, want)
			}
			if got := param(doc, "//user/variables/variable", "effective_caller_id_name"); got != c.display {
				t.Errorf("%s: display name reads back as %q, want %q", c.user, got, c.display)
			}
		}

		// A valid surrogate pair escape is the character itself.
		pair := `{"domain": "pbx.example.com", "user_id": "1002", "password": "pair-\ud83d\ude00-pw"}`
		ev.do("POST", "/api/v1/sip/extensions", w, pair).want(t, http.StatusCreated)
		if got, want := param(lookupUser(t, xc, "1002", "pbx.example.com"), "//user/params/param", "a1-hash"),
			md5hex("1002:pbx.example.com:pair-\U0001F600-pw"); got != want {
			t.Errorf("surrogate pair: a1-hash %s, want %s", got, want)
		}

		// A row another writer stored past the API: never invisible.
		past := &models.Extension{Domain: "pbx.example.com", UserID: "1003", Password: ptr("secret\uffff"), Context: "default", Enabled: true}
		if err := ev.store.CreateExtension(context.Background(), past); err != nil {
			t.Fatal(err)
		}
		got := ev.do("GET", fmt.Sprintf("/api/v1/sip/extensions/%d", past.ID), ev.tokens["sip:read"], nil).want(t, http.StatusOK).JSON(t)
		if why, _ := got["render_error"].(string); !strings.Contains(why, "U+FFFF") || strings.Contains(why, "secret") {
			t.Errorf("render_error %q", got["render_error"])
		}

		// Settings that would be dropped at render time are refused now.
		for _, name := range []string{"accept-blind-reg", "accept-blind-auth", "sip-ip", "Bad_Name"} {
			body := map[string]any{"name": "lab", "family": "ipv4", "sip_ip": hostV4, "sip_port": 5080,
				"params": map[string]string{name: "true"}}
			r := ev.do("POST", "/api/v1/sip/profiles", ev.tokens["admin"], body).want(t, http.StatusUnprocessableEntity)
			if msg := r.Fields(t)["params"]; !strings.Contains(msg, name) {
				t.Errorf("param %s: %q does not name it", name, msg)
			}
		}
		// A display name with U+FFFF in a PATCH is refused too, and the
		// stored one stays.
		ev.do("PATCH", "/api/v1/sip/extensions/"+ids["1001"], w, map[string]any{"display_name": "x\uffff"}).
			want(t, http.StatusUnprocessableEntity)
		if doc := lookupUser(t, xc, "1001", "pbx.example.com"); doc.FindElement("//domain/user") == nil {
			t.Fatal("user 1001 vanished after a refused PATCH")
		}
	})
}

func lookupUser(t *testing.T, xc *xmlcurl.Handler, user, domain string) *etree.Document {
	t.Helper()
	form := "hostname=vm&section=directory&tag_name=domain&key_name=name&key_value=" + domain +
		"&Event-Name=REQUEST_PARAMS&action=sip_auth&sip_auth_realm=" + url.QueryEscape(domain) +
		"&key=id&user=" + url.QueryEscape(user) + "&domain=" + url.QueryEscape(domain)
	req := httptest.NewRequest(http.MethodPost, xmlcurl.Path, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("fs", "fs-pass")
	rec := httptest.NewRecorder()
	xc.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("xml-curl %d: %s", rec.Code, b)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatalf("answer is not XML: %v\n%s", err, b)
	}
	return doc
}

func param(doc *etree.Document, path, name string) string {
	for _, e := range doc.FindElements(path) {
		if e.SelectAttrValue("name", "") == name {
			return e.SelectAttrValue("value", "")
		}
	}
	return ""
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func ptr[T any](v T) *T { return &v }
