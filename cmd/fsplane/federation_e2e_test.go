package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/federation/fedtest"
)

// The federation wiring of serve: /readyz warns about the seeded TLS
// profile without a certificate; PUT /api/v1/federation puts the
// certificate in place and xml-curl renders the TLS side on the profile;
// a renewal replaced by rename reaches the node as reloadcert.
func TestServeWiresFederation(t *testing.T) {
	fs := esltest.Start(t, esltest.Options{})
	fs.SetReply("reloadcert", "+OK\n")
	tlsDir := filepath.Join(t.TempDir(), "tls")
	env := map[string]string{
		"FSPLANE_DATA_DIR":           t.TempDir(),
		"FSPLANE_EXTERNAL_IPV4":      "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":      "2a01:4f8:140:829d::2",
		"FSPLANE_ESL_NODES":          fs.Addr(),
		"FSPLANE_XMLCURL_USER":       "freeswitch",
		"FSPLANE_XMLCURL_PASSWORD":   "xml-pass",
		"FSPLANE_FEDERATION_TLS_DIR": tlsDir,
	}
	addr, stderr, _ := startServe(t, env)
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr

	// /readyz is public: the number of warnings, never a path; the API
	// says which.
	code, body := do(t, http.MethodGet, base+"/readyz", "", "", "")
	if code != http.StatusOK || !strings.Contains(body, `1 federation warning (GET /api/v1/federation)`) || strings.Contains(body, tlsDir) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	code, body = do(t, http.MethodGet, base+"/api/v1/federation", token, "", "")
	if code != http.StatusOK || !strings.Contains(body, `profile \"internal\" has TLS without a configured certificate`) {
		t.Fatalf("federation: %d %s", code, body)
	}

	p := fedtest.NewPKI(t)
	live := filepath.Join(t.TempDir(), "live")
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	place := func(l fedtest.Leaf) {
		der, key := p.Issue(l)
		for name, data := range map[string][]byte{"privkey.pem": fedtest.KeyPEM(t, key), "fullchain.pem": fedtest.PEMBlock("CERTIFICATE", der)} {
			if err := os.WriteFile(filepath.Join(live, "."+name), data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(live, "."+name), filepath.Join(live, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	place(fedtest.Leaf{Names: []string{"sip.good.test"}})
	code, body = do(t, http.MethodPut, base+"/api/v1/federation", token, "application/json", fmt.Sprintf(
		`{"enabled":true,"domain":"good.test","fqdn":"sip.good.test","cert_file":%q,"key_file":%q,"ca_file":%q,"profile":"internal","bind_address":"127.0.0.1"}`,
		filepath.Join(live, "fullchain.pem"), filepath.Join(live, "privkey.pem"), p.RootFile))
	if code != http.StatusOK {
		t.Fatalf("PUT federation: %d %s", code, body)
	}

	form := "hostname=fs1&section=configuration&tag_name=configuration&key_name=name&key_value=sofia.conf&Event-Name=REQUEST_PARAMS"
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/sip/xml-curl", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("freeswitch", "xml-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	_, err = doc.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if e := doc.FindElement("//profile[@name='internal']/settings/param[@name='tls-cert-dir']"); e == nil || e.SelectAttrValue("value", "") != tlsDir {
		t.Fatalf("sofia.conf: internal's tls-cert-dir is not the federation's")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fs.Wait(ctx, func(s *esltest.Server) bool { return s.Count("api reloadacl") >= 1 }); err != nil {
		t.Fatalf("no sync: %v", err)
	}
	place(fedtest.Leaf{Names: []string{"sip.good.test"}})
	if err := fs.Wait(ctx, func(s *esltest.Server) bool { return s.Count("api reloadcert") == 1 }); err != nil {
		t.Fatalf("the renewal did not reach FreeSWITCH: %v\n%q", err, fs.Commands())
	}
	code, body = do(t, http.MethodGet, base+"/metrics", "", "", "")
	if code != http.StatusOK || !strings.Contains(body, `fsplane_federation_certificate_renewals_total{result="installed"} 1`) {
		t.Errorf("metrics: %d", code)
	}
}
