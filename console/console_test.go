package console_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/registrar"
)

func TestWithoutSessionLeadsToLogin(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	for _, path := range []string{"/ui/", "/ui/trunks", "/ui/firewall", "/ui/audit", "/ui/trunks/new?preset=plusnet"} {
		b.get(path).toLogin(t)
	}
	b.post("/ui/trunks", url.Values{"csrf": nil, "preset": {"plusnet"}, "name": {"x"}}).toLogin(t)
	if p := b.get("/ui/events"); p.Code != http.StatusUnauthorized {
		t.Errorf("/ui/events without a session: %d, want 401", p.Code)
	}
	p := b.get("/ui/login").want(t, http.StatusOK)
	if !strings.Contains(p.Body, `name="token"`) || b.csrf == "" {
		t.Errorf("the login page has no token field or no CSRF token:\n%s", p.Body)
	}
	if len(ev.trunkNames()) != 0 {
		t.Error("a POST without a session created a trunk")
	}
}

func TestLoginSetsSessionCookie(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			ev := newEnv(t, envOptions{tls: tls})
			b := ev.browser()
			b.get("/ui/login")
			// The Set-Cookie header itself: the jar hides the flags.
			form := url.Values{"token": {ev.tokens["admin"]}, "csrf": {b.csrf}}
			req, _ := http.NewRequest(http.MethodPost, ev.srv.URL+"/ui/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			p := b.do(req).want(t, http.StatusSeeOther)
			if p.Location != "/ui/" {
				t.Errorf("login leads to %q, want /ui/", p.Location)
			}
			var sc *http.Cookie
			for _, c := range (&http.Response{Header: p.Header}).Cookies() {
				if c.Name == "fsplane_session" {
					sc = c
				}
			}
			if sc == nil {
				t.Fatalf("no session cookie: %v", p.Header.Values("Set-Cookie"))
			}
			if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/ui/" || sc.Secure != tls {
				t.Errorf("cookie flags: HttpOnly=%v SameSite=%v Path=%q Secure=%v (TLS %v)", sc.HttpOnly, sc.SameSite, sc.Path, sc.Secure, tls)
			}
			if strings.Contains(sc.Value, ev.tokens["admin"]) || strings.Contains(sc.Value, strings.TrimPrefix(ev.tokens["admin"], "fsp_")) {
				t.Error("the session cookie carries the token")
			}
			if p := b.get("/ui/").want(t, http.StatusSeeOther); p.Location != "/ui/trunks" {
				t.Errorf("/ui/ with a session leads to %q, want /ui/trunks", p.Location)
			}
			b.get("/ui/trunks").want(t, http.StatusOK)
		})
	}
}

func TestLoginRefusals(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.get("/ui/login")
	p := b.post("/ui/login", url.Values{"token": {"fsp_notatoken"}}).want(t, http.StatusUnauthorized)
	if !strings.Contains(p.Body, "Unknown or expired token") || b.sessionCookie() != nil {
		t.Errorf("unknown token: no message or a session anyway\n%s", p.Body)
	}
	// No CSRF token, or a wrong one: refused before the token is looked at.
	b.post("/ui/login", url.Values{"token": {ev.tokens["admin"]}, "csrf": nil}).want(t, http.StatusForbidden)
	b.post("/ui/login", url.Values{"token": {ev.tokens["admin"]}, "csrf": {"wrong"}}).want(t, http.StatusForbidden)
	if b.sessionCookie() != nil {
		t.Error("a login without its CSRF token made a session")
	}
	if ok, unknown, csrf := ev.metric("fsplane_console_logins_total", "ok"), ev.metric("fsplane_console_logins_total", "unknown"),
		ev.metric("fsplane_console_logins_total", "csrf"); ok != 0 || unknown != 1 || csrf != 2 {
		t.Errorf("logins_total: ok %v unknown %v csrf %v, want 0 1 2", ok, unknown, csrf)
	}
	// A firewall-only token starts at the firewall preview.
	fw := ev.browser()
	fw.login(ev.tokens["firewall:read"])
	if p := fw.get("/ui/"); p.Location != "/ui/firewall" {
		t.Errorf("firewall:read token: /ui/ leads to %q", p.Location)
	}
	fw.get("/ui/firewall").want(t, http.StatusOK)
	fw.get("/ui/trunks").want(t, http.StatusForbidden)
	// A token for FreeSWITCH only has nothing to see.
	b.get("/ui/login")
	b.post("/ui/login", url.Values{"token": {ev.tokens["xmlcurl"]}}).want(t, http.StatusForbidden)
}

func TestCSRFRefused(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	good := b.get("/ui/trunks").want(t, http.StatusOK)
	if b.csrf == "" {
		t.Fatalf("no CSRF token on the trunks page:\n%s", good.Body)
	}
	form := func(csrf []string) url.Values {
		return url.Values{"csrf": csrf, "preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}
	}
	for name, csrf := range map[string][]string{"missing": nil, "wrong": {"x" + b.csrf}, "empty": {""}} {
		p := b.post("/ui/trunks", form(csrf))
		if p.Code != http.StatusForbidden || !strings.Contains(p.Body, "CSRF") {
			t.Errorf("%s CSRF token: %d, want 403 naming CSRF\n%s", name, p.Code, p.Body)
		}
	}
	// Another session's token is no better.
	other := ev.browser()
	other.login(ev.tokens["admin"])
	other.get("/ui/trunks")
	b.post("/ui/trunks", form([]string{other.csrf})).want(t, http.StatusForbidden)
	if n := ev.trunkNames(); len(n) != 0 {
		t.Fatalf("a refused form wrote: %v", n)
	}
	if n := ev.metric("fsplane_console_refused_total", "csrf"); n != 4 {
		t.Errorf("refused_total{reason=csrf} = %v, want 4", n)
	}
	// Logout is a form too.
	b.post("/ui/logout", url.Values{"csrf": nil}).want(t, http.StatusForbidden)
	b.get("/ui/trunks").want(t, http.StatusOK)
	// The right token works.
	b.post("/ui/trunks", form([]string{b.csrf})).want(t, http.StatusSeeOther)
	if n := ev.trunkNames(); !slices.Equal(n, []string{"plusnet"}) {
		t.Fatalf("trunks %v, want [plusnet]", n)
	}
}

func TestSessionExpiry(t *testing.T) {
	ev := newEnv(t)

	t.Run("idle", func(t *testing.T) {
		b := ev.browser()
		b.login(ev.tokens["admin"])
		ev.clock.Add(59 * time.Minute)
		b.get("/ui/trunks").want(t, http.StatusOK) // activity restarts the idle time
		ev.clock.Add(59 * time.Minute)
		b.get("/ui/trunks").want(t, http.StatusOK)
		ev.clock.Add(time.Hour)
		b.get("/ui/trunks").toLogin(t)
		b.get("/ui/trunks").toLogin(t)
	})
	t.Run("max age", func(t *testing.T) {
		b := ev.browser()
		b.login(ev.tokens["admin"])
		for i := 0; i < 23; i++ {
			ev.clock.Add(30 * time.Minute)
			b.get("/ui/trunks").want(t, http.StatusOK)
		}
		ev.clock.Add(30 * time.Minute) // 12h after login
		b.get("/ui/trunks").toLogin(t)
	})
	t.Run("logout", func(t *testing.T) {
		b := ev.browser()
		b.login(ev.tokens["admin"])
		b.get("/ui/trunks")
		old := b.sessionCookie()
		b.post("/ui/logout", url.Values{}).toLogin(t)
		b.get("/ui/trunks").toLogin(t)
		// The old cookie, replayed, is dead.
		replay := ev.browser()
		u, _ := url.Parse(ev.srv.URL + "/ui/")
		replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: old.Name, Value: old.Value, Path: "/ui/"}})
		replay.get("/ui/trunks").toLogin(t)
	})
	t.Run("revoked token", func(t *testing.T) {
		tok := ev.mintToken("short-lived", []string{"sip:read"})
		b := ev.browser()
		b.login(tok)
		b.get("/ui/trunks").want(t, http.StatusOK)
		ev.revoke("short-lived")
		b.get("/ui/trunks").toLogin(t)
	})
}

func TestHostileNamesAreEscaped(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks/new?preset=plusnet")
	hostile := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"},
		"description": {hostile}}).want(t, http.StatusSeeOther)
	p := b.get("/ui/trunks").want(t, http.StatusOK)
	if strings.Contains(p.Body, "<script>alert") || strings.Contains(p.Body, "<img src=x") {
		t.Fatalf("the description reached the page unescaped:\n%s", p.Body)
	}
	if !strings.Contains(p.Body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("the escaped description is not on the page:\n%s", p.Body)
	}
	// A hostile name refused by the API comes back in the form, escaped.
	b.get("/ui/trunks/new?preset=plusnet")
	p = b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {`"><script>alert(2)</script>`}}).want(t, http.StatusUnprocessableEntity)
	if strings.Contains(p.Body, "<script>alert(2)") {
		t.Fatalf("a refused name was echoed unescaped:\n%s", p.Body)
	}
	if !strings.Contains(p.Body, `id="err-name"`) {
		t.Errorf("no error beside the name field:\n%s", p.Body)
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestReadOnlyTokenSeesNoWriteControls(t *testing.T) {
	ev := newEnv(t)
	admin := ev.browser()
	admin.login(ev.tokens["admin"])
	admin.get("/ui/trunks")
	admin.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}).want(t, http.StatusSeeOther)
	adminPage := admin.get("/ui/trunks").want(t, http.StatusOK)

	ro := ev.browser()
	ro.login(ev.tokens["sip:read"])
	p := ro.get("/ui/trunks").want(t, http.StatusOK)
	if !strings.Contains(p.Body, "plusnet") {
		t.Fatalf("the read-only page does not list the trunk:\n%s", p.Body)
	}
	// The admin page has each control: the check below is not vacuous.
	for _, control := range []string{`href="/ui/trunks/new?preset=`, `/edit"`, `/enabled"`, `/delete"`} {
		if !strings.Contains(adminPage.Body, control) {
			t.Fatalf("the admin page lacks %q", control)
		}
		if strings.Contains(p.Body, control) {
			t.Errorf("the sip:read page shows %q", control)
		}
	}
	if strings.Contains(p.Body, `href="/ui/audit"`) || strings.Contains(p.Body, `href="/ui/firewall"`) {
		t.Error("the sip:read page links pages its token may not read")
	}
	// The server refuses the writes anyway, with a valid CSRF token.
	ro.get("/ui/trunks/new?preset=plusnet").want(t, http.StatusForbidden)
	ro.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"other"}, "numbers": {"+493455667291"}}).want(t, http.StatusForbidden)
	ro.post("/ui/trunks/1/enabled", url.Values{"enabled": {"false"}}).want(t, http.StatusForbidden)
	ro.post("/ui/trunks/1/delete", url.Values{}).want(t, http.StatusForbidden)
	ro.get("/ui/audit").want(t, http.StatusForbidden)
	tr, err := ev.store.TrunkByName(context.Background(), "plusnet")
	if err != nil || !tr.Enabled || len(ev.trunkNames()) != 1 {
		t.Fatalf("a read-only session changed trunks: %v %+v %v", err, tr, ev.trunkNames())
	}
}

func TestCreateFromPresetsWithFieldErrors(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	p := b.get("/ui/trunks/new?preset=1und1").want(t, http.StatusOK)
	for _, f := range []string{`name="name"`, `name="numbers"`, `name="username"`, `name="password"`} {
		if !strings.Contains(p.Body, f) {
			t.Errorf("the 1&1 form lacks %s", f)
		}
	}
	if p := b.get("/ui/trunks/new?preset=plusnet"); strings.Contains(p.Body, `name="password"`) {
		t.Error("the Plusnet form (IP authentication) asks for a password")
	}

	// Missing credentials and a bad number: each error beside its field,
	// in the API's words, and the values typed come back (not the password).
	p = b.post("/ui/trunks", url.Values{"preset": {"1und1"}, "name": {"1und1"}, "numbers": {"+4934556643378\n0345 123"},
		"username": {"4934556643378"}}).want(t, http.StatusUnprocessableEntity)
	for _, id := range []string{`id="err-password"`, `id="err-numbers"`} {
		if !strings.Contains(p.Body, id) {
			t.Errorf("no %s on the form:\n%s", id, p.Body)
		}
	}
	if !strings.Contains(p.Body, `value="4934556643378"`) || !strings.Contains(p.Body, "0345 123") {
		t.Errorf("the values typed are not shown again:\n%s", p.Body)
	}
	// A field the form does not show is still reported, by name.
	p = b.post("/ui/trunks", url.Values{"preset": {"nosuch"}, "name": {"x"}}).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(p.Body, `id="err-preset"`) || !strings.Contains(p.Body, "unknown preset") {
		t.Errorf("unknown preset not reported:\n%s", p.Body)
	}

	b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}).want(t, http.StatusSeeOther)
	b.post("/ui/trunks", url.Values{"preset": {"1und1"}, "name": {"1und1"}, "numbers": {"+4934556643378, +493455630488"},
		"username": {"4934556643378"}, "password": {"s3cret-sip-pw"}}).want(t, http.StatusSeeOther)
	p = b.get("/ui/trunks").want(t, http.StatusOK)
	if !strings.Contains(p.Body, "Trunk 1und1 created.") || strings.Contains(p.Body, "s3cret-sip-pw") {
		t.Errorf("flash missing or password shown:\n%s", p.Body)
	}
	one, err := ev.store.TrunkByName(context.Background(), "1und1")
	if err != nil {
		t.Fatal(err)
	}
	if one.Provider != "1und1" || !one.Register || one.Profile != "internal" || !slices.Equal([]string(one.Numbers), []string{"+4934556643378", "+493455630488"}) || one.PasswordEnc == "" {
		t.Errorf("1und1 stored as %+v", one)
	}
	// A duplicate name is the API's 409, shown on the form.
	p = b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}}).want(t, http.StatusConflict)
	if !strings.Contains(p.Body, `id="form-error"`) {
		t.Errorf("the conflict is not shown:\n%s", p.Body)
	}
}

func TestEditDisableDelete(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks")
	b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}).want(t, http.StatusSeeOther)
	tr, err := ev.store.TrunkByName(context.Background(), "plusnet")
	if err != nil {
		t.Fatal(err)
	}
	id := "/ui/trunks/" + strconv.FormatUint(uint64(tr.ID), 10)

	p := b.get(id+"/edit").want(t, http.StatusOK)
	if !strings.Contains(p.Body, `value="92.197.176.16"`) || !strings.Contains(p.Body, `<option value="external-ipv4" selected>`) ||
		!strings.Contains(p.Body, `<option value="internal">`) {
		t.Fatalf("the edit form does not show the outbound proxy and the profiles:\n%s", p.Body)
	}
	form := url.Values{"description": {"main line"}, "profile": {"external-ipv4"}, "proxy": {"sip.plusnet.de"},
		"outbound_proxy": {"92.197.176.16"}, "numbers": {"+493455667290\n+493455667291"}, "enabled": {"on"}, "version": {"1"}}
	// A wrong number: the API's error beside the field.
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("caller_id", "not-a-number")
	p = b.post(id+"/edit", bad).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(p.Body, `id="err-caller_id"`) {
		t.Errorf("no error beside caller_id:\n%s", p.Body)
	}
	b.post(id+"/edit", form).want(t, http.StatusSeeOther)
	tr, _ = ev.store.TrunkByName(context.Background(), "plusnet")
	if tr.Description != "main line" || len(tr.Numbers) != 2 || tr.Version != 2 {
		t.Fatalf("edit stored %+v", tr)
	}
	// The form read version 1: a second save is refused (412), not lost.
	p = b.post(id+"/edit", form).want(t, http.StatusPreconditionFailed)
	if !strings.Contains(p.Body, "changed this trunk") {
		t.Errorf("412 not explained:\n%s", p.Body)
	}

	// A warning (DNS round-robin without an outbound proxy) does not stop
	// the write; it leads to the form with the warning beside its field.
	noOB := url.Values{}
	for k, v := range form {
		noOB[k] = v
	}
	noOB.Set("outbound_proxy", "")
	noOB.Set("version", "2")
	p = b.post(id+"/edit", noOB).want(t, http.StatusSeeOther)
	if p.Location != id+"/edit" {
		t.Fatalf("a write with warnings leads to %q, want the edit form", p.Location)
	}
	p = b.get(id+"/edit").want(t, http.StatusOK)
	if !strings.Contains(p.Body, `id="warn-outbound_proxy"`) || !strings.Contains(p.Body, "DNS round-robin") || !strings.Contains(p.Body, "with warnings") {
		t.Errorf("no warning beside outbound_proxy:\n%s", p.Body)
	}
	if p = b.get(id + "/edit"); strings.Contains(p.Body, `id="warn-outbound_proxy"`) {
		t.Error("the warning is shown again on the next visit")
	}

	b.get("/ui/trunks")
	b.post(id+"/enabled", url.Values{"enabled": {"false"}, "version": {"3"}}).want(t, http.StatusSeeOther)
	if tr, _ = ev.store.TrunkByName(context.Background(), "plusnet"); tr.Enabled {
		t.Fatal("disable did not disable")
	}
	p = b.get(id+"/delete").want(t, http.StatusOK)
	if !strings.Contains(p.Body, "Delete trunk <strong>plusnet</strong>") {
		t.Fatalf("no confirmation:\n%s", p.Body)
	}
	b.post(id+"/delete", url.Values{"version": {"4"}, "name": {"plusnet"}}).want(t, http.StatusSeeOther)
	if n := ev.trunkNames(); len(n) != 0 {
		t.Fatalf("delete left %v", n)
	}
	if p := b.get("/ui/trunks"); !strings.Contains(p.Body, "Trunk plusnet deleted.") {
		t.Errorf("no flash after delete:\n%s", p.Body)
	}
}

func TestOtherPagesRender(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/trunks")
	b.post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}).want(t, http.StatusSeeOther)
	for path, want := range map[string]string{
		"/ui/extensions":         "extension(s)",
		"/ui/registrations":      "No FreeSWITCH node is configured (FSPLANE_ESL_NODES)",
		"/ui/providers":          "92.197.176.0/24",
		"/ui/firewall":           "ufw allow",
		"/ui/nodes":              "No FreeSWITCH node is configured",
		"/ui/audit":              "plusnet",
		"/ui/federation":         "Federation is not configured on this fsplane.",
		"/ui/federation?check=1": "The federation checklist is not configured on this fsplane.",
	} {
		p := b.get(path).want(t, http.StatusOK)
		if !strings.Contains(p.Body, want) {
			t.Errorf("%s lacks %q:\n%s", path, want, p.Body)
		}
	}
	if p := b.get("/ui/federation").want(t, http.StatusOK); !strings.Contains(p.Body, "STUN probe (FSPLANE_STUN_PROBE_SERVER) is not configured") {
		t.Errorf("the federation page does not say why there is no STUN result:\n%s", p.Body)
	}
	p := b.get("/ui/audit?kind="+models.KindToken).want(t, http.StatusOK)
	if strings.Contains(p.Body, "<td>trunk</td>") {
		t.Error("the audit filter by resource let a trunk event through")
	}
	p = b.post("/ui/firewall", url.Values{"ufw_status": {"Status: active\n\nTo                         Action      From\n--                         ------      ----\n22/tcp                     ALLOW       Anywhere\n"}}).want(t, http.StatusOK)
	if !strings.Contains(p.Body, "to add") || !strings.Contains(p.Body, `id="ufw-diff"`) {
		t.Errorf("no diff:\n%s", p.Body)
	}
	p = b.post("/ui/firewall", url.Values{"ufw_status": {"this is not ufw output"}})
	if p.Code != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="err-ufw_status"`) {
		t.Errorf("garbage pasted: %d\n%s", p.Code, p.Body)
	}
}

func TestExtensions(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	p := b.get("/ui/extensions").want(t, http.StatusOK)
	if !strings.Contains(p.Body, `action="/ui/extensions"`) {
		t.Fatalf("no create form for an admin:\n%s", p.Body)
	}
	p = b.post("/ui/extensions", url.Values{"user_id": {"1001"}, "domain": {"pbx.example.com"}, "display_name": {"<b>Desk</b>"}}).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(p.Body, `id="err-password"`) || !strings.Contains(p.Body, `value="1001"`) || strings.Contains(p.Body, "<b>Desk</b>") {
		t.Errorf("missing password: no error beside the field, values lost, or unescaped:\n%s", p.Body)
	}
	b.post("/ui/extensions", url.Values{"user_id": {"1001"}, "domain": {"pbx.example.com"}, "password": {"a-long-sip-password"}}).want(t, http.StatusSeeOther)
	p = b.get("/ui/extensions").want(t, http.StatusOK)
	if !strings.Contains(p.Body, `data-extension="1001@pbx.example.com"`) || !strings.Contains(p.Body, "Extension 1001@pbx.example.com created.") {
		t.Fatalf("the new extension is not listed:\n%s", p.Body)
	}
	exts, _, err := ev.store.ListExtensions(context.Background(), models.ExtensionFilter{})
	if err != nil || len(exts) != 1 {
		t.Fatalf("extensions %v %v", exts, err)
	}
	id := "/ui/extensions/" + strconv.FormatUint(uint64(exts[0].ID), 10)
	b.post(id+"/enabled", url.Values{"enabled": {"false"}, "version": {"1"}}).want(t, http.StatusSeeOther)
	b.get(id+"/delete").want(t, http.StatusOK)
	b.post(id+"/delete", url.Values{"version": {"2"}, "name": {"1001@pbx.example.com"}}).want(t, http.StatusSeeOther)
	if exts, _, _ = ev.store.ListExtensions(context.Background(), models.ExtensionFilter{}); len(exts) != 0 {
		t.Fatalf("delete left %v", exts)
	}

	ro := ev.browser()
	ro.login(ev.tokens["sip:read"])
	if p := ro.get("/ui/extensions").want(t, http.StatusOK); strings.Contains(p.Body, `action="/ui/extensions"`) {
		t.Error("a sip:read token sees the create form")
	}
	ro.post("/ui/extensions", url.Values{"user_id": {"1002"}, "domain": {"pbx.example.com"}, "password": {"a-long-sip-password"}}).want(t, http.StatusForbidden)
}

func TestProviderRanges(t *testing.T) {
	ev := newEnv(t)
	b := ev.browser()
	b.login(ev.tokens["admin"])
	b.get("/ui/providers").want(t, http.StatusOK)
	p := b.post("/ui/providers/plusnet/ranges", url.Values{"cidr": {"92.197.300.0/24"}, "ports": {"5060/udp"}}).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(p.Body, `id="err-plusnet-cidr"`) || strings.Contains(p.Body, `id="err-1und1-cidr"`) {
		t.Errorf("the CIDR error is not beside the Plusnet form's field:\n%s", p.Body)
	}
	b.post("/ui/providers/plusnet/ranges", url.Values{"cidr": {"198.51.100.0/24"}, "ports": {"5060/udp\n5061/tcp"}, "description": {"test"}}).want(t, http.StatusSeeOther)
	ranges, err := ev.store.ListRanges(context.Background(), "plusnet")
	if err != nil {
		t.Fatal(err)
	}
	var added *models.ProviderRange
	for i := range ranges {
		if ranges[i].CIDR == "198.51.100.0/24" {
			added = &ranges[i]
		}
	}
	if added == nil || !slices.Equal([]string(added.Ports), []string{"5060/udp", "5061/tcp"}) {
		t.Fatalf("range not stored as sent: %+v", ranges)
	}
	del := "/ui/providers/plusnet/ranges/" + strconv.FormatUint(uint64(added.ID), 10) + "/delete"
	b.get(del).want(t, http.StatusOK)
	b.post(del, url.Values{"version": {strconv.FormatInt(added.Version, 10)}, "cidr": {added.CIDR}}).want(t, http.StatusSeeOther)
	if after, _ := ev.store.ListRanges(context.Background(), "plusnet"); len(after) != len(ranges)-1 {
		t.Fatalf("delete: %d ranges, want %d", len(after), len(ranges)-1)
	}
}

// The last STUN probe shows on the federation and NAT page, escaped.
func TestFederationPageShowsTheSTUNProbe(t *testing.T) {
	probe := &api.STUNProbeOut{CheckedAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	probe.NATType, probe.PublicAddress, probe.Server = "port-restricted-cone", "203.0.113.7:40000", "stun.example.com:3478"
	probe.Detail = "<script>x</script>"
	ev := newEnv(t, envOptions{stunProbe: func() *api.STUNProbeOut { return probe }})
	b := ev.browser()
	b.login(ev.tokens["sip:read"])
	p := b.get("/ui/federation").want(t, http.StatusOK)
	for _, want := range []string{"port-restricted-cone", "203.0.113.7:40000", "&lt;script&gt;"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("the page lacks %q:\n%s", want, p.Body)
		}
	}
	if strings.Contains(p.Body, "<script>x</script>") {
		t.Error("the probe's detail is not escaped")
	}
}

// fakeRegistrar is fsplane's registrar as the API sees it.
type fakeRegistrar struct {
	mu       sync.Mutex
	bindings []registrar.Binding
	removed  []string
}

func (f *fakeRegistrar) List() []registrar.Binding {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]registrar.Binding(nil), f.bindings...)
}

func (f *fakeRegistrar) Unregister(aor, contact string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, b := range f.bindings {
		if b.AOR == aor && b.Contact == contact {
			f.bindings = append(f.bindings[:i], f.bindings[i+1:]...)
			f.removed = append(f.removed, aor+" "+contact)
			return nil
		}
	}
	return models.ErrNotFound
}

// The registrations page lists the registrar's bindings, escaped; a token
// that may write unregisters one (through the API), a read-only one sees
// no control and is refused.
func TestRegistrationsPage(t *testing.T) {
	reg := &fakeRegistrar{bindings: []registrar.Binding{{AOR: "1001@pbx.example.com", Contact: "sip:1001@192.0.2.7:5062",
		Q: 1, Received: "192.0.2.7:5062", Transport: "udp", UserAgent: "<script>phone</script>", Expires: time.Now().Add(time.Hour)}}}
	ev := newEnv(t, envOptions{registrations: reg})
	ro := ev.browser()
	ro.login(ev.tokens["sip:read"])
	p := ro.get("/ui/registrations").want(t, http.StatusOK)
	if !strings.Contains(p.Body, "1001@pbx.example.com") || !strings.Contains(p.Body, "&lt;script&gt;phone") || strings.Contains(p.Body, "<script>phone") {
		t.Fatalf("the binding is not listed, or not escaped:\n%s", p.Body)
	}
	if strings.Contains(p.Body, "Unregister") {
		t.Fatal("a read-only token sees the unregister control")
	}
	ro.post("/ui/registrations/unregister", url.Values{"aor": {"1001@pbx.example.com"}, "contact": {"sip:1001@192.0.2.7:5062"}}).
		want(t, http.StatusForbidden)

	rw := ev.browser()
	rw.login(ev.tokens["admin"])
	if p := rw.get("/ui/registrations").want(t, http.StatusOK); !strings.Contains(p.Body, "Unregister") {
		t.Fatalf("no unregister control for a token that may write:\n%s", p.Body)
	}
	rw.post("/ui/registrations/unregister", url.Values{"aor": {"1001@pbx.example.com"}, "contact": {"sip:1001@192.0.2.7:5062"}}).
		want(t, http.StatusSeeOther)
	if len(reg.removed) != 1 || reg.removed[0] != "1001@pbx.example.com sip:1001@192.0.2.7:5062" {
		t.Fatalf("unregistered %v", reg.removed)
	}
	if p := rw.get("/ui/registrations").want(t, http.StatusOK); !strings.Contains(p.Body, "No device is registered.") {
		t.Fatalf("the binding is still listed:\n%s", p.Body)
	}
}
