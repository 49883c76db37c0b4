package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models/modelstest"
)

func TestProfiles(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		w, rd := ev.tokens["sip:write"], ev.tokens["sip:read"]
		l := ev.do("GET", "/api/v1/sip/profiles", rd, nil).want(t, http.StatusOK).JSON(t)
		items := l["items"].([]any)
		if l["total"] != float64(2) || len(items) != 2 {
			t.Fatalf("profiles %v", l)
		}
		in := items[1].(map[string]any)
		if in["name"] != "internal" || in["sip_ip"] != "::" || in["ext_rtp_ip"] != hostV6 || in["tls_port"] != float64(5061) || in["wss_binding"] != ":7443" {
			t.Errorf("internal %v", in)
		}
		if p := ev.do("GET", "/api/v1/sip/profiles?limit=1&offset=1", rd, nil).want(t, http.StatusOK).JSON(t); len(p["items"].([]any)) != 1 {
			t.Errorf("paging %v", p)
		}
		g := ev.do("GET", "/api/v1/sip/profiles/external-ipv4", rd, nil).want(t, http.StatusOK)
		if g.Header.Get("ETag") != `"1"` || g.JSON(t)["ext_sip_ip"] != hostV4 {
			t.Errorf("external-ipv4 %s", g.Body)
		}
		ev.do("GET", "/api/v1/sip/profiles/nope", rd, nil).want(t, http.StatusNotFound)

		// 1&1 on internal; then internal may not lose its IPv6 media.
		ev.do("POST", "/api/v1/sip/trunks", w, reg()).want(t, http.StatusCreated)
		r := ev.do("PATCH", "/api/v1/sip/profiles/internal", w, map[string]any{"ext_rtp_ip": hostV4}).want(t, http.StatusUnprocessableEntity)
		if f := r.Fields(t)["ext_rtp_ip"]; !strings.Contains(f, `trunk "one"`) || !strings.Contains(f, "without audio") {
			t.Errorf("fields %v", r.Fields(t))
		}
		r = ev.do("PATCH", "/api/v1/sip/profiles/internal", w, map[string]any{"family": "ipv4", "sip_ip": hostV4,
			"ext_sip_ip": hostV4, "ext_rtp_ip": hostV4, "tls": false, "tls_port": 0}).want(t, http.StatusUnprocessableEntity)
		if f := r.Fields(t)["family"]; !strings.Contains(f, "IPv4-only") {
			t.Errorf("fields %v", r.Fields(t))
		}
		ev.do("PATCH", "/api/v1/sip/profiles/internal", w, map[string]any{"name": "internal2"}).want(t, http.StatusConflict)
		d := ev.do("DELETE", "/api/v1/sip/profiles/internal", w, nil).want(t, http.StatusConflict)
		if !strings.Contains(string(d.Body), `used by 1 trunks`) {
			t.Errorf("delete in use: %s", d.Body)
		}
		// A harmless change goes through, a stale one does not.
		ev.do("PATCH", "/api/v1/sip/profiles/internal", w, map[string]any{"description": "dual stack"}, hdr{"If-Match": `"1"`}).want(t, http.StatusOK)
		ev.do("PATCH", "/api/v1/sip/profiles/internal", w, map[string]any{"description": "x"}, hdr{"If-Match": `"1"`}).want(t, http.StatusPreconditionFailed)

		// Create, replace and delete a free profile.
		c := ev.do("POST", "/api/v1/sip/profiles", w, map[string]any{"name": "lab", "family": "ipv6", "sip_ip": "[2001:db8::5]",
			"ext_sip_ip": "[2001:db8::5]", "ext_rtp_ip": "auto-nat", "params": map[string]string{"dtmf-type": "rfc2833"}}).want(t, http.StatusCreated).JSON(t)
		if c["sip_ip"] != "2001:db8::5" || c["ext_sip_ip"] != "2001:db8::5" || c["auth_calls"] != true || c["sip_port"] != float64(5060) {
			t.Errorf("created %v", c)
		}
		id := fmt.Sprint(c["id"])
		ev.do("PUT", "/api/v1/sip/profiles/"+id, w, map[string]any{"name": "lab", "family": "ipv4", "sip_ip": "192.0.2.5"}).want(t, http.StatusOK)
		ev.do("PUT", "/api/v1/sip/profiles/"+id, w, map[string]any{"name": "lab"}).want(t, http.StatusUnprocessableEntity)
		ev.do("DELETE", "/api/v1/sip/profiles/"+id, w, nil, hdr{"If-Match": `"2"`}).want(t, http.StatusNoContent)
		ev.do("POST", "/api/v1/sip/profiles", w, map[string]any{"name": "internal", "family": "dual", "sip_ip": "::"}).want(t, http.StatusConflict)
	})
}

func TestProfileValidation(t *testing.T) {
	ev := newEnv(t, "sqlite")
	ok := map[string]any{"name": "lab", "family": "ipv4", "sip_ip": "192.0.2.5"}
	for _, tc := range []struct {
		name               string
		body               map[string]any
		wantField, wantErr string
	}{
		{"name", with(ok, "name", "Lab Profile"), "name", "must match"},
		{"family", with(ok, "family", "both"), "family", "ipv4, ipv6 or dual"},
		{"family missing", with(ok, "family", nil), "family", "required"},
		{"ipv6 bind on ipv4", with(ok, "sip_ip", "2001:db8::5"), "sip_ip", "not IPv4"},
		{"dual binds ::", with(ok, "family", "dual", "sip_ip", "2001:db8::5"), "sip_ip", "binds to ::"},
		{"bad bind", with(ok, "sip_ip", "192.0.2"), "sip_ip", "not an IP address"},
		{"ext rtp family", with(ok, "ext_rtp_ip", hostV6), "ext_rtp_ip", "not IPv4"},
		{"ext sip garbage", with(ok, "ext_sip_ip", "stun:stun example"), "ext_sip_ip", "whitespace"},
		{"ext host name", with(ok, "ext_sip_ip", "host:-bad"), "ext_sip_ip", "starting or ending"},
		{"sip port", with(ok, "sip_port", 0), "sip_port", "out of range"},
		{"rtp range", with(ok, "rtp_port_min", 20000, "rtp_port_max", 10000), "rtp_port_max", "below rtp_port_min"},
		{"rtp low", with(ok, "rtp_port_min", 80, "rtp_port_max", 100), "rtp_port_min", "out of range 1024-65535"},
		{"tls port required", with(ok, "tls", true), "tls_port", "required when tls is true"},
		{"tls port clash", with(ok, "tls", true, "tls_port", 5060), "tls_port", "also the sip_port"},
		{"tls port without tls", with(ok, "tls_port", 5061), "tls_port", "set tls to true"},
		{"cert dir", with(ok, "tls_cert_dir", "certs"), "tls_cert_dir", "absolute directory path"},
		{"wss", with(ok, "wss_binding", "7443"), "wss_binding", ":PORT or ADDRESS:PORT"},
		{"acl", with(ok, "inbound_acl", "sip gateways"), "inbound_acl", "must match"},
		{"param shadows field", with(ok, "params", map[string]string{"ext-rtp-ip": "1.2.3.4"}), "params", "set ext_rtp_ip"},
		{"param value", with(ok, "params", map[string]string{"user-agent-string": "fs <x>"}), "params", "whitespace"},
		{"param name", with(ok, "params", map[string]string{"Bad_Name": "1"}), "params", "sofia param name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ev.do("POST", "/api/v1/sip/profiles", ev.tokens["admin"], tc.body).want(t, http.StatusUnprocessableEntity)
			if f := r.Fields(t)[tc.wantField]; !strings.Contains(f, tc.wantErr) {
				t.Errorf("fields %v, want %s: %q", r.Fields(t), tc.wantField, tc.wantErr)
			}
		})
	}
}
