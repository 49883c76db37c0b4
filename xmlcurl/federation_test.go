package xmlcurl

import (
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsplane/fsplane/models"
)

// profileParams returns the params of one profile in a sofia.conf answer.
func profileParams(t *testing.T, body, profile string) map[string]string {
	t.Helper()
	sec := regexp.MustCompile(`(?s)<profile name="` + profile + `">.*?</profile>`).FindString(body)
	if sec == "" {
		t.Fatalf("no profile %s in\n%s", profile, body)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`<param name="([^"]+)" value="([^"]*)"/>`).FindAllStringSubmatch(sec, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestFederationTLSSide: the federation profile gets tls, tls-sip-port and
// tls-cert-dir only while the federation says its files are in place;
// other profiles keep their own TLS settings.
func TestFederationTLSSide(t *testing.T) {
	var inPlace atomic.Bool
	f := newFixture(t, "sqlite", Options{FederationTLS: func(context.Context) (TLSSide, bool, error) {
		return TLSSide{Profile: "lab", Port: 5061, CertDir: "/var/lib/fsplane/federation-tls", ExtSIPIP: "203.0.113.5",
			Domain: "good.test", Routes: []FederationRoute{{Domain: "peer.example", FQDN: "sip.peer.example", Port: 5061}}}, inPlace.Load(), nil
	}})
	seed(t, f.s)

	_, body := f.post(t, configReq("sofia.conf"))
	lab := profileParams(t, body, "lab")
	if lab["tls"] != "false" || lab["tls-cert-dir"] != "" || lab["tls-sip-port"] != "" {
		t.Errorf("files not in place, yet lab renders TLS: %v", lab)
	}
	internal := profileParams(t, body, "internal")
	if _, gws := f.post(t, gatewaysReq("lab", "fs1")); strings.Contains(gws, "federation-") {
		t.Errorf("route gateway before the TLS side is rendered:\n%s", gws)
	}

	inPlace.Store(true)
	// What PutFederation commits: a profile change of the federation profile.
	f.h.OnChange(models.ChangeEvent{Kind: models.KindProfile, Op: models.OpUpdate, Name: "lab"})
	_, body = f.post(t, configReq("sofia.conf"))
	lab = profileParams(t, body, "lab")
	if lab["tls"] != "true" || lab["tls-sip-port"] != "5061" || lab["tls-cert-dir"] != "/var/lib/fsplane/federation-tls" || lab["ext-sip-ip"] != "203.0.113.5" {
		t.Errorf("lab with federation: %v", lab)
	}
	if got := profileParams(t, body, "internal"); got["tls"] != internal["tls"] || got["tls-cert-dir"] != internal["tls-cert-dir"] {
		t.Errorf("internal changed: %v, was %v", got, internal)
	}
	// Direct federation's route: a TLS gateway on the federation profile only.
	_, gws := f.post(t, gatewaysReq("lab", "fs1"))
	want := `<gateway name="federation-peer.example"><param name="register" value="false"/><param name="proxy" value="sip.peer.example:5061"/>` +
		`<param name="register-transport" value="tls"/><param name="realm" value="peer.example"/><param name="from-domain" value="good.test"/></gateway>`
	if !strings.Contains(strings.Join(strings.Fields(gws), ""), strings.ReplaceAll(want, " ", "")) {
		t.Errorf("route gateway missing:\n%s", gws)
	}
	if _, gws := f.post(t, gatewaysReq("internal", "fs1")); strings.Contains(gws, "federation-") {
		t.Errorf("route gateway on another profile:\n%s", gws)
	}
}
