package xmlcurl

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	dto "github.com/prometheus/client_model/go"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func (f *fixture) count(kind, result string) float64 {
	var m dto.Metric
	if err := f.h.m.requests.WithLabelValues(kind, result).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// fetchTwice asks twice and checks the second answer came from the cache,
// so that a later fresh answer proves invalidation, not a cache miss.
func (f *fixture) fetchTwice(t *testing.T, kind, body string) string {
	t.Helper()
	_, first := f.post(t, body)
	hits := f.count(kind, resultHit)
	_, second := f.post(t, body)
	if f.count(kind, resultHit) != hits+1 {
		t.Fatalf("second %s request was not answered from the cache", kind)
	}
	if first != second {
		t.Fatalf("cached answer differs from the rendered one:\n%s\n%s", first, second)
	}
	return second
}

// userA1 is a user answer's a1-hash with the user and realm (the domain)
// it was computed for.
type userA1 struct{ user, realm, hash string }

// is reports whether the answer authenticates password pw.
func (a userA1) is(pw string) bool {
	return a.hash != "" && a.hash == md5hex(a.user+":"+a.realm+":"+pw)
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// a1Of is userPassword for a test that only compares (a not-found answer
// matches no password).
func a1Of(t testing.TB, body string) userA1 {
	t.Helper()
	a, _ := userPassword(t, body)
	return a
}

// userPassword reads the credentials of a user answer: an a1-hash, and
// never the password itself.
func userPassword(t testing.TB, body string) (userA1, bool) {
	t.Helper()
	if isNotFound(body) {
		return userA1{}, false
	}
	doc := parseDoc(t, body)
	if _, ok := paramValue(doc, "//user/params/param", "password"); ok {
		t.Fatalf("user answer carries the plaintext password:\n%s", body)
	}
	v, ok := paramValue(doc, "//user/params/param", "a1-hash")
	if !ok {
		t.Fatalf("user answer without a1-hash:\n%s", body)
	}
	u := doc.FindElement("//domain/user")
	d := doc.FindElement("//domain")
	return userA1{user: u.SelectAttrValue("id", ""), realm: d.SelectAttrValue("name", ""), hash: v}, true
}

func gatewayNames(t testing.TB, body string) []string {
	t.Helper()
	var out []string
	for _, g := range parseDoc(t, body).FindElements("//gateways/gateway") {
		out = append(out, g.SelectAttrValue("name", ""))
	}
	return out
}

func gatewayParam(t testing.TB, body, gateway, name string) (string, bool) {
	t.Helper()
	return paramValue(parseDoc(t, body), "//gateway[@name='"+gateway+"']/param", name)
}

// TestCacheInvalidation writes through the store, as the API does, and
// checks the very next request sees the write, for every kind of row.
func TestCacheInvalidation(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		f := newFixture(t, backend, Options{})
		seed(t, f.s)
		ctx := context.Background()

		t.Run("extension password", func(t *testing.T) {
			f.fetchTwice(t, kindUser, sipAuth("1000", "127.0.0.1"))
			e, err := f.s.ExtensionByUser(ctx, "127.0.0.1", "1000")
			if err != nil {
				t.Fatal(err)
			}
			e.Password = ptr("new-secret")
			if err := f.s.UpdateExtension(ctx, e); err != nil {
				t.Fatal(err)
			}
			_, body := f.post(t, sipAuth("1000", "127.0.0.1"))
			if pw, _ := userPassword(t, body); !pw.is("new-secret") {
				t.Fatalf("after the update the password is %q", pw)
			}
		})

		t.Run("extension disable, enable, delete", func(t *testing.T) {
			f.fetchTwice(t, kindUser, sipAuth("1000", "127.0.0.1"))
			e, _ := f.s.ExtensionByUser(ctx, "127.0.0.1", "1000")
			e.Enabled = false
			if err := f.s.UpdateExtension(ctx, e); err != nil {
				t.Fatal(err)
			}
			if _, body := f.post(t, sipAuth("1000", "127.0.0.1")); !isNotFound(body) {
				t.Fatalf("disabled user still answered:\n%s", body)
			}
			e.Enabled = true
			if err := f.s.UpdateExtension(ctx, e); err != nil {
				t.Fatal(err)
			}
			if _, body := f.post(t, sipAuth("1000", "127.0.0.1")); isNotFound(body) {
				t.Fatal("re-enabled user not answered")
			}
			f.fetchTwice(t, kindUser, sipAuth("1000", "127.0.0.1"))
			if err := f.s.DeleteExtension(ctx, e.ID, 0); err != nil {
				t.Fatal(err)
			}
			if _, body := f.post(t, sipAuth("1000", "127.0.0.1")); !isNotFound(body) {
				t.Fatalf("deleted user still answered:\n%s", body)
			}
		})

		t.Run("unknown user created", func(t *testing.T) {
			// The not-found answer is cached too; the create must drop it.
			f.fetchTwice(t, kindUser, sipAuth("2000", "pbx.example.com"))
			if err := f.s.CreateExtension(ctx, &models.Extension{Domain: "pbx.example.com", UserID: "2000",
				Password: ptr("fresh"), Context: "default", Enabled: true}); err != nil {
				t.Fatal(err)
			}
			_, body := f.post(t, sipAuth("2000", "pbx.example.com"))
			if pw, ok := userPassword(t, body); !ok || !pw.is("fresh") {
				t.Fatalf("new user: %q %v\n%s", pw, ok, body)
			}
		})

		t.Run("extension renamed, user id with @", func(t *testing.T) {
			if err := f.s.CreateExtension(ctx, &models.Extension{Domain: "b.example", UserID: "a@x",
				Password: ptr("pw-a"), Context: "default", Enabled: true}); err != nil {
				t.Fatal(err)
			}
			f.fetchTwice(t, kindUser, sipAuth("a@x", "b.example"))
			f.fetchTwice(t, kindUser, sipAuth("a", "x@b.example")) // a different key, not found
			e, _ := f.s.ExtensionByUser(ctx, "b.example", "a@x")
			e.UserID = "renamed"
			if err := f.s.UpdateExtension(ctx, e); err != nil {
				t.Fatal(err)
			}
			if _, body := f.post(t, sipAuth("a@x", "b.example")); !isNotFound(body) {
				t.Fatalf("old name still answered:\n%s", body)
			}
			if _, body := f.post(t, sipAuth("renamed", "b.example")); isNotFound(body) {
				t.Fatal("new name not answered")
			}
		})

		t.Run("trunk update, move, disable", func(t *testing.T) {
			internal := gatewaysReq("internal", "vm")
			external := gatewaysReq("external-ipv4", "vm")
			body := f.fetchTwice(t, kindGateways, internal)
			if v, _ := gatewayParam(t, body, "1und1", "contact-params"); v != "fsplane=v1" {
				t.Fatalf("contact-params %q", v)
			}
			tr, err := f.s.TrunkByName(ctx, "1und1")
			if err != nil {
				t.Fatal(err)
			}
			tr.Password = ptr("rotated")
			tr.ExpireSeconds = 600
			if err := f.s.UpdateTrunk(ctx, tr); err != nil {
				t.Fatal(err)
			}
			_, body = f.post(t, internal)
			for name, want := range map[string]string{"password": "rotated", "expire-seconds": "600", "contact-params": "fsplane=v2"} {
				if v, _ := gatewayParam(t, body, "1und1", name); v != want {
					t.Errorf("after update %s = %q, want %q", name, v, want)
				}
			}
			f.fetchTwice(t, kindGateways, external)
			tr.Profile = "external-ipv4"
			if err := f.s.UpdateTrunk(ctx, tr); err != nil {
				t.Fatal(err)
			}
			if _, body := f.post(t, internal); strings.Contains(body, `name="1und1"`) {
				t.Fatalf("moved trunk still on internal:\n%s", body)
			}
			if _, body := f.post(t, external); !strings.Contains(body, `<gateway name="1und1">`) {
				t.Fatalf("moved trunk not on external-ipv4:\n%s", body)
			}
			f.fetchTwice(t, kindGateways, external)
			tr.Enabled = false
			if err := f.s.UpdateTrunk(ctx, tr); err != nil {
				t.Fatal(err)
			}
			if _, body := f.post(t, external); strings.Contains(body, `name="1und1"`) {
				t.Fatalf("disabled trunk still rendered:\n%s", body)
			}
		})

		t.Run("profile update", func(t *testing.T) {
			f.fetchTwice(t, kindSofia, configReq("sofia.conf"))
			p, err := f.s.ProfileByName(ctx, "internal")
			if err != nil {
				t.Fatal(err)
			}
			p.ExtRTPIP = "2001:db8::99"
			if err := f.s.UpdateProfile(ctx, p); err != nil {
				t.Fatal(err)
			}
			_, body := f.post(t, configReq("sofia.conf"))
			if v, _ := paramValue(parseDoc(t, body), "//profile[@name='internal']/settings/param", "ext-rtp-ip"); v != "2001:db8::99" {
				t.Fatalf("ext-rtp-ip after update: %q", v)
			}
		})

		t.Run("range added", func(t *testing.T) {
			f.fetchTwice(t, kindACL, configReq("acl.conf"))
			f.fetchTwice(t, kindGateways, gatewaysReq("external-ipv4", "vm"))
			tr, _ := f.s.TrunkByName(ctx, "1und1")
			tr.Enabled = true
			if err := f.s.UpdateTrunk(ctx, tr); err != nil {
				t.Fatal(err)
			}
			f.fetchTwice(t, kindGateways, gatewaysReq("external-ipv4", "vm"))
			if err := f.s.CreateRange(ctx, &models.ProviderRange{Provider: "1und1", CIDR: "198.51.100.0/24"}); err != nil {
				t.Fatal(err)
			}
			if _, body := f.post(t, configReq("acl.conf")); !strings.Contains(body, `cidr="198.51.100.0/24"`) {
				t.Fatalf("new range missing from acl.conf:\n%s", body)
			}
			_, body := f.post(t, gatewaysReq("external-ipv4", "vm"))
			if v, _ := gatewayParam(t, body, "1und1", "gw-auth-acl"); !strings.Contains(v, "198.51.100.0/24") {
				t.Fatalf("new range missing from gw-auth-acl: %q", v)
			}
		})
	})
}

// TestWriteDuringRender lands a committed write between a render's
// database read and its caching: the render must not be cached, or the
// next request would get the pre-write answer.
func TestWriteDuringRender(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		f := newFixture(t, backend, Options{})
		seed(t, f.s)
		ctx := context.Background()
		wrote := false
		f.h.afterRender = func() {
			if wrote {
				return
			}
			wrote = true
			e, err := f.s.ExtensionByUser(ctx, "127.0.0.1", "1000")
			if err != nil {
				t.Error(err)
				return
			}
			e.Password = ptr("written-meanwhile")
			if err := f.s.UpdateExtension(ctx, e); err != nil {
				t.Error(err)
			}
		}
		_, first := f.post(t, sipAuth("1000", "127.0.0.1"))
		if pw, _ := userPassword(t, first); !pw.is("1234-secret") {
			t.Fatalf("first answer %q (the write landed after the read)", pw)
		}
		f.h.afterRender = nil
		_, second := f.post(t, sipAuth("1000", "127.0.0.1"))
		if pw, _ := userPassword(t, second); !pw.is("written-meanwhile") {
			t.Fatalf("answer after the committed write: %q", pw)
		}
	})
}

// TestDegraded makes the database fail under a warm cache: config answers
// come from the last good render (even after an invalidation), users not
// in the cache are refused, Health says degraded and recovers.
func TestDegraded(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		f := newFixture(t, backend, Options{})
		seed(t, f.s)
		// The seed's lab profile carries settings written past the API,
		// which Health reports on their own; start from a clean one.
		lab, err := f.s.ProfileByName(context.Background(), "lab")
		if err != nil {
			t.Fatal(err)
		}
		lab.Params = models.StringMap{"dtmf-type": "rfc2833"}
		if err := f.s.UpdateProfile(context.Background(), lab); err != nil {
			t.Fatal(err)
		}
		db := f.s.DB()
		_, sofia := f.post(t, configReq("sofia.conf"))
		_, gws := f.post(t, gatewaysReq("internal", "vm"))
		_, user := f.post(t, sipAuth("1000", "127.0.0.1"))
		if st, _ := f.h.Health(); st != "ok" {
			t.Fatalf("health %q before the outage", st)
		}
		// Break every table the renders read.
		for _, tbl := range []string{"profiles", "trunks", "extensions", "provider_ranges"} {
			if err := db.Exec("ALTER TABLE " + tbl + " RENAME TO " + tbl + "_away").Error; err != nil {
				t.Fatal(err)
			}
		}
		// Invalidate as a write on another replica would.
		f.h.OnChange(models.ChangeEvent{Kind: models.KindProfile, Name: "internal"})
		f.h.OnChange(models.ChangeEvent{Kind: models.KindTrunk, Name: "1und1"})
		code, body := f.post(t, configReq("sofia.conf"))
		if code != http.StatusOK || body != sofia {
			t.Fatalf("sofia.conf during the outage: %d\n%s", code, body)
		}
		if _, body := f.post(t, gatewaysReq("internal", "vm")); body != gws {
			t.Fatalf("gateways during the outage:\n%s", body)
		}
		if st, detail := f.h.Health(); st != "degraded" || !strings.Contains(detail, "database unreachable") {
			t.Fatalf("health during the outage: %q %q", st, detail)
		}
		// A cached user is still valid: nothing changed it.
		if _, body := f.post(t, sipAuth("1000", "127.0.0.1")); body != user {
			t.Fatalf("cached user during the outage:\n%s", body)
		}
		// An unknown or invalidated user is never guessed.
		if code, body := f.post(t, sipAuth("1002", "127.0.0.1")); code != http.StatusServiceUnavailable || !isNotFound(body) {
			t.Fatalf("uncached user during the outage: %d\n%s", code, body)
		}
		f.h.OnChange(models.ChangeEvent{Kind: models.KindExtension, Name: "1000@127.0.0.1"})
		if code, body := f.post(t, sipAuth("1000", "127.0.0.1")); code != http.StatusServiceUnavailable || !isNotFound(body) {
			t.Fatalf("invalidated user during the outage: %d\n%s", code, body)
		}
		if f.count(kindSofia, resultStale) != 1 || f.count(kindUser, resultError) != 2 {
			t.Fatalf("stale %v, errors %v", f.count(kindSofia, resultStale), f.count(kindUser, resultError))
		}
		if !strings.Contains(f.log.String(), "database unreachable") {
			t.Fatalf("outage not logged:\n%s", f.log.String())
		}
		for _, tbl := range []string{"profiles", "trunks", "extensions", "provider_ranges"} {
			if err := db.Exec("ALTER TABLE " + tbl + "_away RENAME TO " + tbl).Error; err != nil {
				t.Fatal(err)
			}
		}
		if _, body := f.post(t, sipAuth("1000", "127.0.0.1")); body != user {
			t.Fatalf("user after recovery:\n%s", body)
		}
		if st, _ := f.h.Health(); st != "ok" {
			t.Fatalf("health after recovery: %q", st)
		}
	})
}

// TestCacheKeysOwnTheirStrings: a cached key must not point into the
// request body it came from, or every entry would pin a whole body.
func TestCacheKeysOwnTheirStrings(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	seed(t, f.s)
	body := sipAuth("1000", "127.0.0.1")
	req := ParseRequest(body)
	k := userKey{domain: req.Domain, user: req.User}
	if !within(k.user, body) {
		t.Fatal("precondition: the parsed user should alias the body")
	}
	f.h.c.users.put(k, newAnswer([]byte("x")))
	for key := range f.h.c.users.fresh {
		if within(key.user, body) || within(key.domain, body) {
			t.Fatalf("cached key %+v aliases the request body", key)
		}
	}
}

func within(s, in string) bool {
	if len(s) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	lo := uintptr(unsafe.Pointer(unsafe.StringData(in)))
	return p >= lo && p < lo+uintptr(len(in))
}

// TestPooledBodiesNotRetained: requests are parsed from pooled body
// buffers without a copy, so concurrent lookups of different users (misses
// and hits, buffers handed from one request to the next) must each get
// their own user, and every cached key must still name a real user.
func TestPooledBodiesNotRetained(t *testing.T) {
	const users, workers = 24, 4
	f := benchFixture(t, "sqlite", users)
	got := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				for i := range users {
					u := (i*7 + w*5 + round) % users
					_, body := f.post(t, sipAuth(fmt.Sprint(1000+u), "127.0.0.1"))
					got[w] = append(got[w], fmt.Sprint(u)+"\n"+body)
				}
			}
		}()
	}
	wg.Wait()
	for _, answers := range got {
		for _, a := range answers {
			u, body, _ := strings.Cut(a, "\n")
			if pw, ok := userPassword(t, body); !ok || !pw.is("pw-"+u) {
				t.Fatalf("user %s answered with password %q (found %v)", u, pw, ok)
			}
		}
	}
	f.h.c.mu.RLock()
	defer f.h.c.mu.RUnlock()
	if len(f.h.c.users.fresh) != users {
		t.Fatalf("%d cached users, want %d", len(f.h.c.users.fresh), users)
	}
	for k := range f.h.c.users.fresh {
		n, err := strconv.Atoi(k.user)
		if err != nil || n < 1000 || n >= 1000+users || k.domain != "127.0.0.1" {
			t.Fatalf("cached key %+v names no user", k)
		}
	}
}

// TestCacheMaxAgeHealsAMissedChange: a change the cache never heard of (a
// row updated past the store, so no OnChange) is served from the cache
// until the answer is older than CacheMaxAge, then rendered anew.
func TestCacheMaxAgeHealsAMissedChange(t *testing.T) {
	for _, c := range []struct {
		maxAge time.Duration
		want   string
	}{
		{0, "Reception"},                // the default (5 minutes): still cached
		{time.Nanosecond, "Front Desk"}, // already too old: rendered again
	} {
		f := newFixture(t, "sqlite", Options{CacheMaxAge: c.maxAge})
		seed(t, f.s)
		name := func() string {
			_, body := f.post(t, sipAuth("1000", "127.0.0.1"))
			v, _ := paramValue(parseDoc(t, body), "//user/variables/variable", "effective_caller_id_name")
			return v
		}
		if got := name(); got != "Reception" {
			t.Fatalf("first answer: %q", got)
		}
		if err := f.s.DB().Exec("UPDATE extensions SET display_name = 'Front Desk' WHERE user_id = '1000'").Error; err != nil {
			t.Fatal(err)
		}
		if got := name(); got != c.want {
			t.Errorf("max age %v: answer after a missed change says %q, want %q", c.maxAge, got, c.want)
		}
	}
}
