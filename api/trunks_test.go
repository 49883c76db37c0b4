package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

const onePassword = "Zx9-runbook-secret"

// TestSeedTrunksFromPresets creates the runbook's two trunks with three
// fields each (plus 1&1's credentials) and checks the stored rows.
func TestSeedTrunksFromPresets(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		admin := ev.tokens["admin"]

		r := ev.do("POST", "/api/v1/sip/trunks", ev.tokens["sip:write"], map[string]any{
			"preset": "plusnet", "name": "plusnet", "numbers": []string{"+493455667290"},
		}).want(t, http.StatusCreated)
		if w := r.JSON(t)["warnings"].([]any); len(w) != 0 {
			t.Errorf("plusnet preset warnings: %v", w)
		}
		if r.Header.Get("Location") == "" || r.Header.Get("ETag") != `"1"` {
			t.Errorf("Location %q ETag %q", r.Header.Get("Location"), r.Header.Get("ETag"))
		}
		ev.do("POST", "/api/v1/sip/trunks", ev.tokens["sip:write"], map[string]any{
			"preset": "1und1", "name": "1und1", "numbers": []string{"+4934556643378", "+493455630488"},
			"username": "4934556643378", "password": onePassword,
		}).want(t, http.StatusCreated)

		ctx := context.Background()
		pn, err := ev.store.TrunkByName(ctx, "plusnet")
		if err != nil {
			t.Fatal(err)
		}
		// The runbook's Plusnet block.
		if pn.Provider != "plusnet" || pn.Proxy != "sip.plusnet.de" || pn.OutboundProxy != "92.197.176.16" ||
			pn.Register || pn.Profile != "external-ipv4" || pn.CallerIDInFrom || pn.PasswordEnc != "" ||
			!slices.Equal(pn.Numbers, []string{"+493455667290"}) || !pn.Enabled {
			t.Errorf("plusnet row %+v", pn)
		}
		one, err := ev.store.TrunkByName(ctx, "1und1")
		if err != nil {
			t.Fatal(err)
		}
		// The runbook's 1&1 block, the outbound proxy in brackets.
		if one.Provider != "1und1" || one.Proxy != "sip.1und1.de" || one.OutboundProxy != "[2001:8d8:104:100:212:227:124:129]" ||
			one.RegisterProxy != "[2001:8d8:104:100:212:227:124:129]" || !one.Register || one.Realm != "sip.1und1.de" ||
			one.Profile != "internal" || one.Username != "4934556643378" {
			t.Errorf("1und1 row %+v", one)
		}
		if one.PasswordEnc == "" || strings.Contains(one.PasswordEnc, onePassword) {
			t.Errorf("password_enc %q is empty or holds the plaintext", one.PasswordEnc)
		}
		if plain, err := ev.store.Reveal(models.KindTrunk, one.ID, one.Name, one.PasswordEnc); err != nil || plain != onePassword {
			t.Errorf("sealed password opens to %q, %v", plain, err)
		}
		// No column of any row holds the plaintext.
		var rows []map[string]any
		if err := ev.store.DB().Table("trunks").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		dump := fmt.Sprint(rows)
		if strings.Contains(dump, onePassword) || len(rows) != 2 {
			t.Errorf("trunks table holds the plaintext password or has %d rows", len(rows))
		}
		// Responses never show it either.
		for _, path := range []string{"/api/v1/sip/trunks", "/api/v1/sip/trunks/1und1", fmt.Sprintf("/api/v1/sip/trunks/%d", one.ID)} {
			r := ev.do("GET", path, admin, nil).want(t, http.StatusOK)
			if strings.Contains(string(r.Body), onePassword) || strings.Contains(string(r.Body), one.PasswordEnc) ||
				strings.Contains(string(r.Body), `"password"`) {
				t.Errorf("GET %s shows the password: %s", path, r.Body)
			}
		}
		got := ev.do("GET", "/api/v1/sip/trunks/1und1", admin, nil).JSON(t)
		if got["has_password"] != true {
			t.Errorf("has_password = %v", got["has_password"])
		}
		var audits []models.AuditEvent
		ev.store.DB().Where("kind = ?", "trunk").Find(&audits)
		if len(audits) != 2 || audits[0].Actor != "sip:write" || audits[0].RemoteIP != "192.0.2.10" ||
			!slices.Contains(audits[1].Fields, "password") {
			t.Errorf("audit %+v", audits)
		}
	})
}

func TestPresetNeedsCredentials(t *testing.T) {
	ev := newEnv(t, "sqlite")
	r := ev.do("POST", "/api/v1/sip/trunks", ev.tokens["admin"], map[string]any{
		"preset": "1und1", "name": "1und1", "numbers": []string{"+493455630488"},
	}).want(t, http.StatusUnprocessableEntity)
	f := r.Fields(t)
	if !strings.Contains(f["username"], `preset "1und1" registers`) || !strings.Contains(f["password"], "required") {
		t.Errorf("fields %v", f)
	}
}

// base returns a valid IP-auth trunk body (Plusnet-like, explicit).
func base() map[string]any {
	return map[string]any{
		"name": "pn", "provider": "plusnet", "profile": "external-ipv4", "proxy": "sip.plusnet.de",
		"outbound_proxy": "92.197.176.16", "register": false, "numbers": []string{"+493455667290"},
	}
}

// reg returns a valid registering trunk body (1&1-like, explicit).
func reg() map[string]any {
	return map[string]any{
		"name": "one", "provider": "1und1", "profile": "internal", "proxy": "sip.1und1.de",
		"outbound_proxy": "[2001:8d8:104:100:212:227:124:129]", "register_proxy": "[2001:8d8:104:100:212:227:124:129]",
		"register": true, "realm": "sip.1und1.de", "username": "4934556643378", "password": onePassword,
	}
}

func with(b map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range b {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestTrunkValidation(t *testing.T) {
	ev := newEnv(t, "sqlite")
	admin := ev.tokens["admin"]
	// Profiles beyond the seed's two, for the family rules.
	ev.do("POST", "/api/v1/sip/profiles", admin, map[string]any{"name": "v6only", "family": "ipv6", "sip_ip": hostV6,
		"ext_sip_ip": hostV6, "ext_rtp_ip": hostV6}).want(t, http.StatusCreated)
	ev.do("POST", "/api/v1/sip/profiles", admin, map[string]any{"name": "dual-v4rtp", "family": "dual", "sip_ip": "::",
		"ext_sip_ip": hostV6, "ext_rtp_ip": hostV4}).want(t, http.StatusCreated)
	ev.do("POST", "/api/v1/providers/v4only/ranges", admin, map[string]any{"cidr": "198.51.100.0/24"}).want(t, http.StatusCreated)

	tests := []struct {
		name      string
		body      map[string]any
		wantField string // "" → success
		wantErr   string // substring of the field's message, or of a warning
		wantWarn  string // warning field on success
		check     func(t *testing.T, got map[string]any)
	}{
		{name: "valid ip-auth", body: base()},
		{name: "valid registering", body: reg()},
		{name: "name uppercase", body: with(base(), "name", "Plusnet"), wantField: "name", wantErr: "must match"},
		{name: "name with space", body: with(base(), "name", "plus net"), wantField: "name", wantErr: "must match"},
		{name: "name with newline", body: with(base(), "name", "pn\nsofia profile internal restart"), wantField: "name", wantErr: "must match"},
		{name: "name missing", body: with(base(), "name", nil), wantField: "name", wantErr: "required"},
		{name: "profile missing", body: with(base(), "profile", nil), wantField: "profile", wantErr: "required"},
		{name: "register missing", body: with(base(), "register", nil), wantField: "register", wantErr: "required"},
		{name: "unknown profile", body: with(base(), "profile", "external"), wantField: "profile", wantErr: `no sofia profile "external"`},
		{name: "number with spaces", body: with(base(), "numbers", []string{"+49 345 566 7290"}), wantField: "numbers", wantErr: "without separators, e.g. +493455667290"},
		{name: "number national", body: with(base(), "numbers", []string{"03455667290"}), wantField: "numbers", wantErr: "not an E.164"},
		{name: "number too long", body: with(base(), "numbers", []string{"+4934556672901234"}), wantField: "numbers", wantErr: "not an E.164"},
		{name: "number twice", body: with(base(), "numbers", []string{"+493455667290", "+493455667290"}), wantField: "numbers", wantErr: "listed twice"},
		{name: "caller id", body: with(base(), "caller_id", "+49-345"), wantField: "caller_id", wantErr: "E.164"},
		{name: "proxy newline", body: with(base(), "proxy", "sip.plusnet.de\nX"), wantField: "proxy", wantErr: "whitespace"},
		{name: "proxy xml", body: with(base(), "proxy", "<gateway/>"), wantField: "proxy", wantErr: `must not contain '<'`},
		{name: "proxy dollar", body: with(base(), "proxy", "${domain}"), wantField: "proxy", wantErr: `must not contain '$'`},
		{name: "proxy quote", body: with(base(), "proxy", `sip"x`), wantField: "proxy", wantErr: `must not contain '"'`},
		{name: "proxy ampersand", body: with(base(), "proxy", "a&b"), wantField: "proxy", wantErr: `must not contain '&'`},
		{name: "proxy empty", body: with(base(), "proxy", ""), wantField: "proxy", wantErr: "must not be empty"},
		{name: "proxy port", body: with(base(), "proxy", "sip.plusnet.de:5060"), check: field("proxy", "sip.plusnet.de:5060")},
		{name: "proxy upper case", body: with(base(), "proxy", "SIP.Plusnet.DE"), check: field("proxy", "sip.plusnet.de")},
		{name: "proxy bad port", body: with(base(), "proxy", "sip.plusnet.de:70000"), wantField: "proxy", wantErr: "out of range"},
		{name: "proxy bad label", body: with(base(), "proxy", "-sip.plusnet.de"), wantField: "proxy", wantErr: "starting or ending with '-'"},
		{name: "proxy bad ipv4", body: with(base(), "proxy", "999.197.176.16"), wantField: "proxy", wantErr: "not a valid IPv4 address or host name"},
		{name: "bare ipv6 bracketed", body: with(reg(), "outbound_proxy", "2001:8d8:104:100:212:227:124:129"),
			check: field("outbound_proxy", "[2001:8d8:104:100:212:227:124:129]")},
		{name: "bracketed ipv6 with port", body: with(reg(), "outbound_proxy", "[2001:8d8:104:100:212:227:124:129]:5060"),
			check: field("outbound_proxy", "[2001:8d8:104:100:212:227:124:129]:5060")},
		{name: "ipv6 compressed", body: with(reg(), "register_proxy", "2001:08d8:0104:0100:0212:0227:0124:0129"),
			check: field("register_proxy", "[2001:8d8:104:100:212:227:124:129]")},
		{name: "malformed ipv6", body: with(reg(), "outbound_proxy", "2001:8d8::104::129"), wantField: "outbound_proxy", wantErr: "not a valid IPv6 address"},
		{name: "malformed bracketed ipv6", body: with(reg(), "outbound_proxy", "[2001:8d8:zz::1]"), wantField: "outbound_proxy", wantErr: "not a valid IP address"},
		{name: "unclosed bracket", body: with(reg(), "outbound_proxy", "[2001:8d8::1"), wantField: "outbound_proxy", wantErr: "missing ]"},
		{name: "ipv4 in brackets", body: with(base(), "outbound_proxy", "[92.197.176.16]"), wantField: "outbound_proxy", wantErr: "only IPv6"},
		{name: "ipv6 zone", body: with(reg(), "outbound_proxy", "fe80::1%eth0"), wantField: "outbound_proxy", wantErr: "zone"},
		{name: "mapped ipv4", body: with(base(), "outbound_proxy", "::ffff:92.197.176.16"), wantField: "outbound_proxy", wantErr: "IPv4-mapped"},
		{name: "ipv6 realm bracketed", body: with(reg(), "realm", "2001:8d8:104:100:212:227:124:129", "proxy", "[2001:8d8:104:100:212:227:124:129]"),
			check: field("realm", "[2001:8d8:104:100:212:227:124:129]")},
		{name: "ipv6 from-domain bracketed", body: with(reg(), "from_domain", "2001:8d8:104:100:212:227:124:129"),
			check: field("from_domain", "[2001:8d8:104:100:212:227:124:129]")},
		{name: "realm with port", body: with(reg(), "realm", "sip.1und1.de:5060"), wantField: "realm", wantErr: "must not carry a port"},
		{name: "transport", body: with(base(), "transport", "sctp"), wantField: "transport", wantErr: "udp, tcp or tls"},
		{name: "tls without tls profile", body: with(base(), "transport", "tls"), wantField: "transport", wantErr: `profile "external-ipv4" has none`},
		{name: "tls on tls profile", body: with(reg(), "transport", "tls"), check: field("transport", "tls")},
		{name: "expire low", body: with(reg(), "expire_seconds", 10), wantField: "expire_seconds", wantErr: "out of range 60-86400"},
		{name: "retry zero", body: with(reg(), "retry_seconds", 0), wantField: "retry_seconds", wantErr: "out of range 5-3600"},
		{name: "ping low", body: with(base(), "ping_seconds", 3), wantField: "ping_seconds", wantErr: "0 turns OPTIONS pings off"},
		{name: "ping off", body: with(base(), "ping_seconds", 0), check: field("ping_seconds", float64(0))},
		{name: "username space", body: with(reg(), "username", "49 345"), wantField: "username", wantErr: "whitespace"},
		{name: "username dollar", body: with(reg(), "username", "$user"), wantField: "username", wantErr: `'$'`},
		{name: "from user xml", body: with(reg(), "from_user", "a<b"), wantField: "from_user", wantErr: `'<'`},
		{name: "password newline", body: with(reg(), "password", "abc\r\ndef"), wantField: "password", wantErr: "line breaks"},
		{name: "register needs username", body: with(reg(), "username", nil), wantField: "username", wantErr: "required when register is true"},
		{name: "register needs password", body: with(reg(), "password", nil), wantField: "password", wantErr: "required when register is true"},
		{name: "register empty password", body: with(reg(), "password", ""), wantField: "password", wantErr: "required when register is true"},
		{name: "ip auth needs provider", body: with(base(), "provider", nil), wantField: "provider", wantErr: "required when register is false"},
		{name: "ip auth needs ranges", body: with(base(), "provider", "nobody"), wantField: "provider", wantErr: `provider "nobody" has no source ranges`},
		{name: "provider name", body: with(base(), "provider", "Plus Net"), wantField: "provider", wantErr: "whitespace"},
		{name: "ipv6 proxy on ipv4 profile", body: with(reg(), "profile", "external-ipv4"), wantField: "outbound_proxy", wantErr: "IPv4-only"},
		{name: "bare ipv6 proxy on ipv4 profile", body: with(reg(), "profile", "external-ipv4", "proxy", "2001:8d8:104:100:212:227:124:129", "outbound_proxy", nil, "register_proxy", nil),
			wantField: "proxy", wantErr: "1&1 answers 503"},
		{name: "ipv4 provider on ipv6-only profile", body: with(base(), "profile", "v6only"), wantField: "outbound_proxy", wantErr: "IPv6-only"},
		{name: "ipv4-only ranges on ipv6-only profile", body: with(base(), "profile", "v6only", "provider", "v4only", "outbound_proxy", nil, "proxy", "sip.example.net"),
			wantField: "provider", wantErr: `provider "v4only" sends from IPv4 only`},
		{name: "ipv4 trunk on ipv6 rtp", body: with(base(), "profile", "internal"), wantField: "profile", wantErr: "without audio"},
		{name: "ipv6 trunk on ipv4 rtp", body: with(reg(), "profile", "dual-v4rtp"), wantField: "profile", wantErr: "ext-rtp-ip 46.4.96.105 (ipv4)"},
		{name: "wrong realm warns", body: with(reg(), "realm", "1und1.de"), wantWarn: "realm", wantErr: "401 Unauthorized"},
		{name: "realm case-insensitive", body: with(reg(), "realm", "SIP.1und1.DE"), check: noWarnings},
		{name: "realm with literal proxy", body: with(reg(), "proxy", "[2001:8d8:104:100:212:227:124:129]", "realm", "sip.1und1.de"), check: noWarnings},
		{name: "round robin without outbound proxy warns", body: with(base(), "outbound_proxy", nil), wantWarn: "outbound_proxy", wantErr: "has 3 IPv4 addresses"},
		{name: "register over v6 without register proxy warns", body: with(reg(), "register_proxy", nil), wantWarn: "register_proxy", wantErr: "never to outbound_proxy"},
		{name: "hostnames", body: with(base(), "hostnames", []string{"fs1", "fs 2"}), wantField: "hostnames", wantErr: "[1]"},
		{name: "context", body: with(base(), "context", "public default"), wantField: "context", wantErr: "whitespace"},
		{name: "description free text", body: with(base(), "description", "Plusnet main number & fax <ok>"), check: noWarnings},
		{name: "description newline", body: with(base(), "description", "a\nb"), wantField: "description", wantErr: "line breaks"},
		{name: "unknown preset", body: with(base(), "preset", "telekom"), wantField: "preset", wantErr: "unknown preset"},
		{name: "preset provider mismatch", body: map[string]any{"preset": "plusnet", "name": "x", "provider": "1und1"}, wantField: "provider", wantErr: "conflicts with preset"},
		{name: "version on create", body: with(base(), "version", 3), wantField: "version", wantErr: "not allowed on create"},
		{name: "preset override", body: map[string]any{"preset": "plusnet", "name": "pn", "description": "main"}, check: field("description", "main")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ev.do("POST", "/api/v1/sip/trunks", admin, tc.body)
			if tc.wantField != "" {
				r.want(t, http.StatusUnprocessableEntity)
				msg, ok := r.Fields(t)[tc.wantField]
				if !ok || !strings.Contains(msg, tc.wantErr) {
					t.Fatalf("fields %v, want %s containing %q", r.Fields(t), tc.wantField, tc.wantErr)
				}
				if strings.Contains(string(r.Body), onePassword) {
					t.Errorf("error body repeats the password: %s", r.Body)
				}
				return
			}
			r.want(t, http.StatusCreated)
			got := r.JSON(t)
			defer ev.do("DELETE", fmt.Sprintf("/api/v1/sip/trunks/%v", got["id"]), admin, nil).want(t, http.StatusNoContent)
			warnings := got["warnings"].([]any)
			if tc.wantWarn != "" {
				found := false
				for _, w := range warnings {
					w := w.(map[string]any)
					found = found || w["field"] == tc.wantWarn && strings.Contains(w["message"].(string), tc.wantErr)
				}
				if !found {
					t.Fatalf("warnings %v lack %s: %q", warnings, tc.wantWarn, tc.wantErr)
				}
			} else if tc.check == nil && len(warnings) != 0 {
				t.Errorf("unexpected warnings %v", warnings)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func field(name string, want any) func(*testing.T, map[string]any) {
	return func(t *testing.T, got map[string]any) {
		t.Helper()
		if got[name] != want {
			t.Errorf("%s = %#v, want %#v", name, got[name], want)
		}
	}
}

func noWarnings(t *testing.T, got map[string]any) {
	t.Helper()
	if w := got["warnings"].([]any); len(w) != 0 {
		t.Errorf("warnings %v", w)
	}
}

func TestRoundRobinLookupFailureIsNoWarning(t *testing.T) {
	ev := newEnv(t, "sqlite")
	ev.resolver.fail = true
	r := ev.do("POST", "/api/v1/sip/trunks", ev.tokens["admin"], with(base(), "outbound_proxy", nil)).want(t, http.StatusCreated)
	noWarnings(t, r.JSON(t))
	if !slices.Contains(ev.resolver.asked, "sip.plusnet.de") {
		t.Errorf("resolver not asked: %v", ev.resolver.asked)
	}
	// One address: not round-robin.
	ev.resolver.fail = false
	ev.resolver.answers["sip.single.example"] = []string{"192.0.2.7"}
	r = ev.do("POST", "/api/v1/sip/trunks", ev.tokens["admin"], with(base(), "name", "single", "outbound_proxy", nil, "proxy", "sip.single.example")).want(t, http.StatusCreated)
	noWarnings(t, r.JSON(t))
	// A literal address is never looked up.
	ev.resolver.asked = nil
	ev.do("POST", "/api/v1/sip/trunks", ev.tokens["admin"], with(base(), "name", "lit", "outbound_proxy", nil, "proxy", "92.197.176.16")).want(t, http.StatusCreated)
	if len(ev.resolver.asked) != 0 {
		t.Errorf("looked up %v", ev.resolver.asked)
	}
}

func TestTrunkCRUD(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		w, rd := ev.tokens["sip:write"], ev.tokens["sip:read"]
		created := ev.do("POST", "/api/v1/sip/trunks", w, with(reg(), "description", "IVR")).want(t, http.StatusCreated).JSON(t)
		id := fmt.Sprint(created["id"])
		path := "/api/v1/sip/trunks/" + id
		ev.do("POST", "/api/v1/sip/trunks", w, base()).want(t, http.StatusCreated)
		ev.do("POST", "/api/v1/sip/trunks", w, with(base(), "name", "pn2", "enabled", false)).want(t, http.StatusCreated)

		// Duplicate name: 409.
		dup := ev.do("POST", "/api/v1/sip/trunks", w, base()).want(t, http.StatusConflict)
		if !strings.Contains(string(dup.Body), `trunk \"pn\": already exists`) {
			t.Errorf("duplicate body %s", dup.Body)
		}

		g := ev.do("GET", path, rd, nil).want(t, http.StatusOK)
		if g.Header.Get("ETag") != `"1"` {
			t.Errorf("ETag %q", g.Header.Get("ETag"))
		}
		ev.do("GET", "/api/v1/sip/trunks/one", rd, nil).want(t, http.StatusOK)
		ev.do("GET", "/api/v1/sip/trunks/9999", rd, nil).want(t, http.StatusNotFound)
		nf := ev.do("GET", "/api/v1/sip/trunks/nope", rd, nil).want(t, http.StatusNotFound)
		if string(nf.Body) != `{"error":"trunk \"nope\": not found"}`+"\n" {
			t.Errorf("404 body %q", nf.Body)
		}

		// Lists: filters and paging.
		list := func(q string) map[string]any {
			return ev.do("GET", "/api/v1/sip/trunks"+q, rd, nil).want(t, http.StatusOK).JSON(t)
		}
		names := func(m map[string]any) []string {
			var out []string
			for _, it := range m["items"].([]any) {
				out = append(out, it.(map[string]any)["name"].(string))
			}
			return out
		}
		if l := list(""); l["total"] != float64(3) || !slices.Equal(names(l), []string{"one", "pn", "pn2"}) {
			t.Errorf("list %v", l)
		}
		if l := list("?provider=plusnet"); !slices.Equal(names(l), []string{"pn", "pn2"}) {
			t.Errorf("provider filter %v", names(l))
		}
		if l := list("?profile=internal"); !slices.Equal(names(l), []string{"one"}) {
			t.Errorf("profile filter %v", names(l))
		}
		if l := list("?enabled=false"); !slices.Equal(names(l), []string{"pn2"}) {
			t.Errorf("enabled filter %v", names(l))
		}
		if l := list("?limit=1&offset=1"); l["total"] != float64(3) || !slices.Equal(names(l), []string{"pn"}) || l["limit"] != float64(1) {
			t.Errorf("paging %v", l)
		}
		bad := ev.do("GET", "/api/v1/sip/trunks?enabled=maybe&limit=0", rd, nil).want(t, http.StatusUnprocessableEntity).Fields(t)
		if bad["enabled"] == "" || bad["limit"] == "" {
			t.Errorf("bad filters %v", bad)
		}

		ev.takeEvents()
		// Disable with If-Match.
		r := ev.do("PATCH", path, w, map[string]any{"enabled": false}, hdr{"If-Match": `"1"`}).want(t, http.StatusOK)
		if r.Header.Get("ETag") != `"2"` || r.JSON(t)["enabled"] != false || r.JSON(t)["has_password"] != true {
			t.Errorf("patch: ETag %q body %s", r.Header.Get("ETag"), r.Body)
		}
		evs := ev.takeEvents()
		if len(evs) != 1 || evs[0].Op != "update" || !slices.Equal(evs[0].Fields, []string{"enabled"}) ||
			evs[0].OldEnabled != true || evs[0].NewEnabled != false || evs[0].Cosmetic || evs[0].Actor != "sip:write" {
			t.Errorf("disable event %+v", evs)
		}
		// Stale If-Match and stale body version: 412, nothing written.
		ev.do("PATCH", path, w, map[string]any{"enabled": true}, hdr{"If-Match": `"1"`}).want(t, http.StatusPreconditionFailed)
		ev.do("PATCH", path, w, map[string]any{"enabled": true, "version": 1}).want(t, http.StatusPreconditionFailed)
		ev.do("DELETE", path, w, nil, hdr{"If-Match": `"1"`}).want(t, http.StatusPreconditionFailed)
		ev.do("PATCH", path, w, map[string]any{"enabled": true, "version": 1}, hdr{"If-Match": `"2"`}).want(t, http.StatusBadRequest)
		ev.do("PATCH", path, w, map[string]any{"enabled": true}, hdr{"If-Match": `W/"2"`}).want(t, http.StatusBadRequest)
		ev.do("PATCH", path, w, map[string]any{"enabled": true}, hdr{"If-Match": `2`}).want(t, http.StatusBadRequest)
		if evs := ev.takeEvents(); len(evs) != 0 {
			t.Errorf("refused writes emitted %+v", evs)
		}
		// A cosmetic change; body version current.
		r = ev.do("PATCH", path, w, map[string]any{"description": "IVR main number", "version": 2}).want(t, http.StatusOK)
		if evs := ev.takeEvents(); len(evs) != 1 || !evs[0].Cosmetic {
			t.Errorf("cosmetic event %+v", evs)
		}
		// If-Match: * and none both go through.
		ev.do("PATCH", path, w, map[string]any{"enabled": true}, hdr{"If-Match": "*"}).want(t, http.StatusOK)
		ev.do("PATCH", path, w, map[string]any{"password": "new-secret-1"}).want(t, http.StatusOK)
		if evs := ev.takeEvents(); len(evs) != 2 || !slices.Equal(evs[1].Fields, []string{"password"}) {
			t.Errorf("password event %+v", evs)
		}
		// PATCH validates the merged trunk.
		ev.do("PATCH", path, w, map[string]any{"profile": "external-ipv4"}).want(t, http.StatusUnprocessableEntity)
		ev.do("PATCH", path, w, map[string]any{"preset": "plusnet"}).want(t, http.StatusUnprocessableEntity)

		// PUT replaces: omitted fields take defaults, the password stays.
		put := with(reg(), "password", nil, "description", nil, "expire_seconds", 600)
		r = ev.do("PUT", path, w, put).want(t, http.StatusOK)
		got := r.JSON(t)
		if got["description"] != "" || got["expire_seconds"] != float64(600) || got["has_password"] != true || got["version"] != float64(6) {
			t.Errorf("put %v", got)
		}
		miss := ev.do("PUT", path, w, map[string]any{"name": "one"}).want(t, http.StatusUnprocessableEntity).Fields(t)
		if miss["profile"] != "required" || miss["proxy"] != "required" || miss["register"] != "required" {
			t.Errorf("put required %v", miss)
		}
		// Rename to a taken name: 409.
		ev.do("PATCH", path, w, map[string]any{"name": "pn"}).want(t, http.StatusConflict)

		ev.do("DELETE", path, rd, nil).want(t, http.StatusForbidden)
		ev.do("DELETE", path, w, nil, hdr{"If-Match": `"6"`}).want(t, http.StatusNoContent)
		ev.do("GET", path, rd, nil).want(t, http.StatusNotFound)
		ev.do("DELETE", path, w, nil).want(t, http.StatusNotFound)
		ev.do("PATCH", path, w, map[string]any{"enabled": true}).want(t, http.StatusNotFound)
		if evs := ev.takeEvents(); len(evs) != 2 || evs[1].Op != "delete" || evs[1].OldProfile != "internal" {
			t.Errorf("delete events %+v", evs)
		}
	})
}

// TestConcurrentWrite makes another writer commit between the handler's
// read and its write: without a precondition the answer is 409, with one
// it is 412, and the other writer's change survives.
func TestConcurrentWrite(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		w := ev.tokens["sip:write"]
		// No outbound proxy: the round-robin check looks the proxy up,
		// and the fake resolver writes meanwhile.
		body := with(base(), "outbound_proxy", nil)
		id := fmt.Sprint(ev.do("POST", "/api/v1/sip/trunks", w, body).want(t, http.StatusCreated).JSON(t)["id"])
		ctx := context.Background()
		bump := func() {
			tr, err := ev.store.TrunkByName(ctx, "pn")
			if err != nil {
				t.Error(err)
				return
			}
			tr.Description = fmt.Sprintf("edited by someone else at v%d", tr.Version)
			if err := ev.store.UpdateTrunk(ctx, tr); err != nil {
				t.Error(err)
			}
		}
		ev.resolver.hook = bump
		r := ev.do("PATCH", "/api/v1/sip/trunks/"+id, w, map[string]any{"enabled": false}).want(t, http.StatusConflict)
		if !strings.Contains(string(r.Body), "changed concurrently") {
			t.Errorf("409 body %s", r.Body)
		}
		ev.do("PATCH", "/api/v1/sip/trunks/"+id, w, map[string]any{"enabled": false}, hdr{"If-Match": `"2"`}).want(t, http.StatusPreconditionFailed)
		ev.resolver.hook = nil
		tr, err := ev.store.TrunkByName(ctx, "pn")
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Enabled || tr.Version != 3 || tr.Description != "edited by someone else at v2" {
			t.Errorf("row after refused writes %+v", tr)
		}
	})
}

func TestTrunkJSONShape(t *testing.T) {
	ev := newEnv(t, "sqlite")
	r := ev.do("POST", "/api/v1/sip/trunks", ev.tokens["admin"], map[string]any{"preset": "plusnet", "name": "plusnet"}).want(t, http.StatusCreated)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"password", "password_enc", "PasswordEnc", "Password"} {
		if _, ok := m[k]; ok {
			t.Errorf("response has %s", k)
		}
	}
	if string(m["numbers"]) != "[]" || string(m["hostnames"]) != "[]" {
		t.Errorf("empty lists render as %s / %s", m["numbers"], m["hostnames"])
	}
}
