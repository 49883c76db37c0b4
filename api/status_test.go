package api_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
)

type fakeESL struct {
	nodes []esl.NodeStatus
	err   error
	asked []string
}

func (f *fakeESL) Nodes() []esl.NodeStatus { return f.nodes }

func (f *fakeESL) GatewayStatus(ctx context.Context, t models.Trunk) ([]esl.GatewayStatus, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("no deadline")
	}
	f.asked = append(f.asked, t.Name)
	if f.err != nil {
		return nil, f.err
	}
	return []esl.GatewayStatus{{Node: "127.0.0.1:8021", Gateway: t.Name, Profile: t.Profile, State: "NOREG",
		Register: t.Register, Healthy: !t.Register, ObservedAt: time.Unix(1700000000, 0).UTC(),
		Calls:        &esl.GatewayCalls{In: 7, Out: 3, FailedOut: 1},
		LastRegister: &esl.RegisterReply{Status: 403, Phrase: "Forbidden", State: "FAILED", At: time.Unix(1700000000, 0).UTC()}}}, nil
}

// The fake answers trunk status only; FreeSWITCH's registrations are
// tested against a real manager and esltest (fsregistrations_test.go).
func (f *fakeESL) Registrations(context.Context, []string) ([]esl.ProfileRegistrations, error) {
	return nil, errors.New("fakeESL: no registrations")
}

func (f *fakeESL) Unregister(context.Context, esl.Unregistration) (esl.Registration, error) {
	return esl.Registration{}, errors.New("fakeESL: no registrations")
}

func TestESLNotConfigured(t *testing.T) {
	ev := newEnv(t, "sqlite")
	rd := ev.tokens["sip:read"]
	if r := ev.do("GET", "/api/v1/esl/nodes", rd, nil).want(t, http.StatusOK); strings.TrimSpace(string(r.Body)) != "[]" {
		t.Errorf("nodes %s", r.Body)
	}
	ev.do("POST", "/api/v1/sip/trunks", ev.tokens["admin"], map[string]any{"preset": "plusnet", "name": "plusnet"}).want(t, http.StatusCreated)
	r := ev.do("GET", "/api/v1/sip/trunks/plusnet/status", rd, nil).want(t, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.Body), "no FreeSWITCH node configured") {
		t.Errorf("body %s", r.Body)
	}
	ev.do("GET", "/api/v1/sip/trunks/nope/status", rd, nil).want(t, http.StatusNotFound)
}

func TestESLStatus(t *testing.T) {
	f := &fakeESL{nodes: []esl.NodeStatus{{Node: "127.0.0.1:8021", State: esl.StateConnected, Since: time.Unix(1700000000, 0).UTC()}}}
	ev := newEnv(t, "sqlite", envOptions{esl: f})
	rd := ev.tokens["sip:read"]
	if r := ev.do("GET", "/api/v1/esl/nodes", rd, nil).want(t, http.StatusOK); !strings.Contains(string(r.Body), `"state":"connected"`) {
		t.Errorf("nodes %s", r.Body)
	}
	ev.do("POST", "/api/v1/sip/trunks", ev.tokens["admin"], map[string]any{"preset": "plusnet", "name": "plusnet"}).want(t, http.StatusCreated)
	got := ev.do("GET", "/api/v1/sip/trunks/plusnet/status", rd, nil).want(t, http.StatusOK).JSON(t)
	gws := got["gateways"].([]any)
	if got["trunk"] != "plusnet" || len(gws) != 1 || gws[0].(map[string]any)["state"] != "NOREG" || gws[0].(map[string]any)["healthy"] != true {
		t.Errorf("status %v", got)
	}
	// Calls in/out and the last REGISTER reply, as ESL tells them.
	gw := gws[0].(map[string]any)
	calls, _ := gw["calls"].(map[string]any)
	lr, _ := gw["last_register"].(map[string]any)
	if calls["in"] != float64(7) || calls["out"] != float64(3) || calls["failed_out"] != float64(1) ||
		lr["status"] != float64(403) || lr["phrase"] != "Forbidden" || lr["state"] != "FAILED" {
		t.Errorf("calls %v, last_register %v", calls, lr)
	}
	// A failing node: 502, and the internal error stays in the log.
	f.err = errors.New("dial tcp 10.9.8.7:8021: secret-internal-detail")
	r := ev.do("GET", "/api/v1/sip/trunks/plusnet/status", rd, nil).want(t, http.StatusBadGateway)
	if strings.Contains(string(r.Body), "secret-internal-detail") || !strings.Contains(string(r.Body), "FreeSWITCH did not answer") {
		t.Errorf("502 body %s", r.Body)
	}
}

func TestFirewallRules(t *testing.T) {
	ev := newEnv(t, "sqlite")
	fw := ev.tokens["firewall:read"]
	ctx := context.Background()
	for _, tc := range []struct{ format, provider string }{
		{"ufw", ""}, {"nft", ""}, {"acl", ""}, {"json", ""}, {"ufw", "plusnet"}, {"", ""},
	} {
		t.Run(tc.format+"/"+tc.provider, func(t *testing.T) {
			ranges, _ := ev.store.ListRanges(ctx, tc.provider)
			profiles, _ := ev.store.ListProfiles(ctx)
			format := tc.format
			if format == "" {
				format = "json"
			}
			want, ct, err := firewall.Export(format, ranges, profiles)
			path := "/api/v1/firewall/rules?format=" + tc.format
			if tc.provider != "" {
				path += "&provider=" + tc.provider
			}
			r := ev.do("GET", path, fw, nil)
			if err != nil {
				// The exporter refuses: a 500 that shows nothing of why.
				r.want(t, http.StatusInternalServerError)
				if string(r.Body) != `{"error":"internal error"}`+"\n" {
					t.Errorf("500 body %s", r.Body)
				}
				return
			}
			r.want(t, http.StatusOK)
			if !bytes.Equal(r.Body, want) || r.Header.Get("Content-Type") != ct {
				t.Errorf("body/type differ from firewall.Export: %q vs %q\n%s", r.Header.Get("Content-Type"), ct, r.Body)
			}
			if !strings.Contains(string(r.Body), "92.197.1") {
				t.Errorf("no Plusnet range in %s", r.Body)
			}
			if tc.provider == "plusnet" && strings.Contains(string(r.Body), "212.227.124.0") {
				t.Errorf("provider filter ignored: %s", r.Body)
			}
		})
	}
	e := ev.do("GET", "/api/v1/firewall/rules?format=iptables", fw, nil).want(t, http.StatusUnprocessableEntity)
	if f := e.Fields(t)["format"]; !strings.Contains(f, "ufw, nft, acl or json") {
		t.Errorf("fields %v", e.Fields(t))
	}
	ev.do("GET", "/api/v1/firewall/rules?format=ufw&provider=telekom", fw, nil).want(t, http.StatusNotFound)
	ev.do("GET", "/api/v1/firewall/rules?format=ufw&provider=Tele%20kom", fw, nil).want(t, http.StatusUnprocessableEntity)
}
