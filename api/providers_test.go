package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models/modelstest"
)

func TestProvidersAndRanges(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		w, rd := ev.tokens["sip:write"], ev.tokens["sip:read"]

		l := ev.do("GET", "/api/v1/providers", rd, nil).want(t, http.StatusOK).JSON(t)
		got := fmt.Sprint(l["items"])
		want := "[map[builtin:true name:1und1 ranges:2 title:1&1 trunks:0] map[builtin:true name:plusnet ranges:3 title:Plusnet trunks:0]]"
		if got != want {
			t.Errorf("providers\n%s\nwant\n%s", got, want)
		}
		p := ev.do("GET", "/api/v1/providers/1und1", rd, nil).want(t, http.StatusOK).JSON(t)
		preset := p["preset"].(map[string]any)
		if preset["outbound_proxy"] != "[2001:8d8:104:100:212:227:124:129]" || preset["realm"] != "sip.1und1.de" || len(p["ranges"].([]any)) != 2 {
			t.Errorf("1und1 %v", p)
		}
		ev.do("GET", "/api/v1/providers/telekom", rd, nil).want(t, http.StatusNotFound)

		// A new provider by its ranges.
		base := "/api/v1/providers/sipgate/ranges"
		r := ev.do("POST", base, w, map[string]any{"cidr": "217.10.79.9/24", "ports": []string{"5060/udp", "5060/udp", "10000:20000/udp"}}).want(t, http.StatusCreated).JSON(t)
		if r["cidr"] != "217.10.79.0/24" || fmt.Sprint(r["ports"]) != "[5060/udp 10000:20000/udp]" || r["provider"] != "sipgate" {
			t.Errorf("created range %v", r)
		}
		id := fmt.Sprint(r["id"])
		if d := ev.do("POST", base, w, map[string]any{"cidr": "2001:ab7::1"}).want(t, http.StatusCreated).JSON(t); d["cidr"] != "2001:ab7::1/128" || fmt.Sprint(d["ports"]) != "[5060/udp]" {
			t.Errorf("host range %v", d)
		}
		ev.do("POST", base, w, map[string]any{"cidr": "217.10.79.0/24"}).want(t, http.StatusConflict)
		for _, tc := range []struct {
			body               map[string]any
			wantField, wantErr string
		}{
			{map[string]any{"cidr": "217.10.79/24"}, "cidr", "not a CIDR"},
			{map[string]any{"cidr": "0.0.0.0/0"}, "cidr", "too broad"},
			{map[string]any{"cidr": "::/0"}, "cidr", "too broad"},
			{map[string]any{"cidr": "192.0.2.0/24", "ports": []string{"5060"}}, "ports", "no protocol"},
			{map[string]any{"cidr": "192.0.2.0/24", "ports": []string{"5060/sctp"}}, "ports", "udp or tcp"},
			{map[string]any{"cidr": "192.0.2.0/24", "ports": []string{}}, "ports", "at least one"},
			{map[string]any{"cidr": "192.0.2.0/24", "description": "a\nb"}, "description", "line breaks"},
			{map[string]any{"ports": []string{"5060/udp"}}, "cidr", "required"},
		} {
			e := ev.do("POST", base, w, tc.body).want(t, http.StatusUnprocessableEntity)
			if f := e.Fields(t)[tc.wantField]; !strings.Contains(f, tc.wantErr) {
				t.Errorf("%v: fields %v, want %s: %q", tc.body, e.Fields(t), tc.wantField, tc.wantErr)
			}
		}
		ev.do("POST", "/api/v1/providers/Bad%20Name/ranges", w, map[string]any{"cidr": "192.0.2.0/24"}).want(t, http.StatusUnprocessableEntity)
		// "general" names the firewall's rules from profile settings.
		gen := ev.do("POST", "/api/v1/providers/general/ranges", w, map[string]any{"cidr": "192.0.2.0/24"}).want(t, http.StatusUnprocessableEntity)
		if f := gen.Fields(t)["provider"]; !strings.Contains(f, "reserved") {
			t.Errorf("reserved provider name: %v", gen.Fields(t))
		}
		ev.do("GET", "/api/v1/providers/Bad%20Name/ranges", rd, nil).want(t, http.StatusUnprocessableEntity)

		lr := ev.do("GET", base, rd, nil).want(t, http.StatusOK).JSON(t)
		if lr["total"] != float64(2) {
			t.Errorf("ranges %v", lr)
		}
		g := ev.do("GET", base+"/"+id, rd, nil).want(t, http.StatusOK)
		if g.Header.Get("ETag") != `"1"` {
			t.Errorf("ETag %q", g.Header.Get("ETag"))
		}
		// A range is addressed under its own provider only.
		ev.do("GET", "/api/v1/providers/plusnet/ranges/"+id, rd, nil).want(t, http.StatusNotFound)
		ev.do("PATCH", base+"/"+id, w, map[string]any{"ports": []string{"5061/tcp"}}, hdr{"If-Match": `"1"`}).want(t, http.StatusOK)
		ev.do("PATCH", base+"/"+id, w, map[string]any{"ports": []string{"5062/tcp"}}, hdr{"If-Match": `"1"`}).want(t, http.StatusPreconditionFailed)
		pu := ev.do("PUT", base+"/"+id, w, map[string]any{"cidr": "217.10.68.0/24"}).want(t, http.StatusOK).JSON(t)
		if pu["cidr"] != "217.10.68.0/24" || fmt.Sprint(pu["ports"]) != "[5060/udp]" {
			t.Errorf("put %v", pu)
		}

		// The last range of a provider with an IP-authenticated trunk stays.
		plus := ev.do("GET", "/api/v1/providers/plusnet/ranges", rd, nil).JSON(t)["items"].([]any)
		ev.do("POST", "/api/v1/sip/trunks", w, map[string]any{"preset": "plusnet", "name": "plusnet"}).want(t, http.StatusCreated)
		for i, it := range plus {
			rid := fmt.Sprint(it.(map[string]any)["id"])
			r := ev.do("DELETE", "/api/v1/providers/plusnet/ranges/"+rid, w, nil)
			if i < len(plus)-1 {
				r.want(t, http.StatusNoContent)
			} else if r.want(t, http.StatusConflict); !strings.Contains(string(r.Body), `IP-authenticated trunk \"plusnet\" needs it`) {
				t.Errorf("last range: %s", r.Body)
			}
		}
		// A provider that only has trunks is listed too.
		if n := ev.do("GET", "/api/v1/providers/plusnet", rd, nil).JSON(t)["trunks"]; n != float64(1) {
			t.Errorf("plusnet trunks %v", n)
		}
		if rs, _ := ev.store.ListRanges(context.Background(), "plusnet"); len(rs) != 1 {
			t.Errorf("plusnet has %d ranges", len(rs))
		}
	})
}
