package xmlcurl

import (
	"context"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
)

// TestA1HashAnswersCapturedRegister replays the REGISTER lookup FreeSWITCH
// 1.10.12 really sent (testdata/freeswitch-requests/register.txt, made by
// sipsak with user 1000, password 1234) and checks that the a1-hash in the
// answer, used as sofia_reg.c uses it, yields the digest response sipsak
// sent: the realm FreeSWITCH asks with is the one hashed, and the answer
// carries no password.
func TestA1HashAnswersCapturedRegister(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	ctx := context.Background()
	// 1234 is shorter than the API allows; the capture was made with it.
	if err := f.s.CreateExtension(ctx, &models.Extension{Domain: "127.0.0.1", UserID: "1000",
		Password: ptr("1234"), Context: "default", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	body := capturedBodies(t)["register.txt"][0]
	req := map[string]string{}
	for _, p := range ParseRequest(body).Params() {
		req[p.Name] = p.Value
	}
	code, answer := f.post(t, body)
	if code != 200 {
		t.Fatalf("status %d: %s", code, answer)
	}
	if strings.Contains(answer, `name="password"`) || strings.Contains(answer, `"1234"`) {
		t.Fatalf("the answer reveals the password:\n%s", answer)
	}
	doc := parseDoc(t, answer)
	ha1, ok := paramValue(doc, "//user/params/param", "a1-hash")
	if !ok {
		t.Fatalf("no a1-hash:\n%s", answer)
	}
	// RFC 2617 §3.2.2.1 with qop=auth, as sofia_reg.c computes it.
	ha2 := md5hex(req["sip_auth_method"] + ":" + req["sip_auth_uri"])
	response := md5hex(strings.Join([]string{ha1, req["sip_auth_nonce"], req["sip_auth_nc"],
		req["sip_auth_cnonce"], req["sip_auth_qop"], ha2}, ":"))
	if response != req["sip_auth_response"] {
		t.Fatalf("digest from a1-hash %s = %s, sipsak sent %s", ha1, response, req["sip_auth_response"])
	}
}

// TestA1HashRealm: the hash follows the realm FreeSWITCH names
// (sip_auth_realm), also one other than the domain, which is answered
// without the cache; without a realm it is the domain. With plaintext
// passwords configured, the password is rendered instead.
func TestA1HashRealm(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	ctx := context.Background()
	if err := f.s.CreateExtension(ctx, &models.Extension{Domain: "pbx.example.com", UserID: "2000",
		Password: ptr("realm-secret"), Context: "default", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	hashFor := func(body string) string {
		t.Helper()
		_, answer := f.post(t, body)
		v, ok := paramValue(parseDoc(t, answer), "//user/params/param", "a1-hash")
		if !ok {
			t.Fatalf("no a1-hash:\n%s", answer)
		}
		return v
	}
	withRealm := func(realm string) string {
		return strings.Replace(sipAuth("2000", "pbx.example.com"), "sip_auth_realm=pbx.example.com", "sip_auth_realm="+realm, 1)
	}
	for _, realm := range []string{"pbx.example.com", "sip.example.com", "PBX.example.com"} {
		body := withRealm(realm)
		if !strings.Contains(body, "sip_auth_realm="+realm) {
			t.Fatalf("request without the realm: %s", body)
		}
		for i := 0; i < 2; i++ { // the second from the cache where cached
			if got, want := hashFor(body), md5hex("2000:"+realm+":realm-secret"); got != want {
				t.Errorf("realm %s (try %d): a1-hash %s, want %s", realm, i, got, want)
			}
		}
	}
	userCall := formatRequest(Request{Hostname: "vm", Section: "directory", TagName: "domain", KeyName: "name", KeyValue: "pbx.example.com"},
		[]Param{{"Event-Name", "REQUEST_PARAMS"}, {"action", "user_call"}, {"key", "id"}, {"user", "2000"}, {"domain", "pbx.example.com"}})
	if got, want := hashFor(userCall), md5hex("2000:pbx.example.com:realm-secret"); got != want {
		t.Errorf("user_call without realm: a1-hash %s, want %s", got, want)
	}

	plain := &fixture{h: New(Options{Store: f.s, BasicUser: testBasicUser, BasicPassword: testBasicPass, PlaintextPasswords: true}), s: f.s, log: f.log}
	_, answer := plain.post(t, withRealm("sip.example.com"))
	doc := parseDoc(t, answer)
	if v, _ := paramValue(doc, "//user/params/param", "password"); v != "realm-secret" {
		t.Fatalf("plaintext setting: password %q\n%s", v, answer)
	}
	if _, ok := paramValue(doc, "//user/params/param", "a1-hash"); ok {
		t.Fatalf("plaintext setting rendered an a1-hash too:\n%s", answer)
	}
}
