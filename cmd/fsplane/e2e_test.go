package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/fsplane/fsplane/esl/esltest"
)

func do(t testing.TB, method, url, token, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The wiring of serve: a trunk created through the API from its preset is
// in the very next gateways answer FreeSWITCH fetches (event bus → cache),
// with the seeded default profile, and the change is audited.
func TestServeWiresAPIToXMLCurl(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"FSPLANE_DATA_DIR":         dir,
		"FSPLANE_EXTERNAL_IPV4":    "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":    "2a01:4f8:140:829d::2",
		"FSPLANE_XMLCURL_USER":     "freeswitch",
		"FSPLANE_XMLCURL_PASSWORD": "xml-pass",
	}
	addr, stderr, _ := startServe(t, env)
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr

	gateways := func() *etree.Document {
		t.Helper()
		form := "hostname=fs1&section=directory&tag_name=&key_name=&key_value=&Event-Name=REQUEST_PARAMS&purpose=gateways&profile=internal"
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/sip/xml-curl", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("freeswitch", "xml-pass")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("xml-curl answered %d", resp.StatusCode)
		}
		doc := etree.NewDocument()
		if _, err := doc.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	if gw := gateways().FindElement("//gateway[@name='einsundeins']"); gw != nil {
		t.Fatal("gateway exists before it was created")
	}

	code, body := do(t, http.MethodPost, base+"/api/v1/sip/trunks", token, "application/json",
		`{"preset":"1und1","name":"einsundeins","numbers":["+493455664337"],"username":"4934556643370","password":"One-And-One-Pw"}`)
	if code != http.StatusCreated {
		t.Fatalf("create trunk: %d %s", code, body)
	}
	if strings.Contains(body, "One-And-One-Pw") {
		t.Fatal("the create answer echoes the password")
	}

	gw := gateways().FindElement("//gateway[@name='einsundeins']")
	if gw == nil {
		t.Fatal("the new trunk is not in the next gateways answer")
	}
	params := map[string]string{}
	for _, p := range gw.FindElements("param") {
		params[p.SelectAttrValue("name", "")] = p.SelectAttrValue("value", "")
	}
	for k, want := range map[string]string{
		"realm": "sip.1und1.de", "proxy": "sip.1und1.de", "register": "true",
		"outbound-proxy": "[2001:8d8:104:100:212:227:124:129]", "password": "One-And-One-Pw",
	} {
		if params[k] != want {
			t.Errorf("param %s = %q, want %q", k, params[k], want)
		}
	}

	code, body = do(t, http.MethodGet, base+"/api/v1/audit", token, "", "")
	if code != http.StatusOK || !strings.Contains(body, "einsundeins") || strings.Contains(body, "One-And-One-Pw") {
		t.Fatalf("audit: %d %s", code, body)
	}
	var profiles struct {
		Items []struct{ Name string } `json:"items"`
	}
	code, body = do(t, http.MethodGet, base+"/api/v1/sip/profiles", token, "", "")
	_ = json.Unmarshal([]byte(body), &profiles)
	if code != http.StatusOK || len(profiles.Items) != 2 {
		t.Fatalf("seeded profiles: %d %s", code, body)
	}

	// Prometheus metrics are served beside the API.
	code, body = do(t, http.MethodGet, base+"/metrics", "", "", "")
	if code != http.StatusOK || !strings.Contains(body, "fsplane_") {
		t.Fatalf("/metrics: %d", code)
	}
}

// The ESL wiring of serve: a FreeSWITCH that starts without its profiles is
// brought up to date on connect, a trunk created through the API becomes a
// rescan on the node, and readiness and /api/v1/esl/nodes show the node.
func TestServeWiresAPIToESL(t *testing.T) {
	fs := esltest.Start(t, esltest.Options{Password: "s3cret-esl"})
	env := map[string]string{
		"FSPLANE_DATA_DIR":      t.TempDir(),
		"FSPLANE_EXTERNAL_IPV4": "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6": "2a01:4f8:140:829d::2",
		"FSPLANE_ESL_NODES":     fs.Addr(),
		"FSPLANE_ESL_PASSWORD":  "s3cret-esl",
	}
	addr, stderr, _ := startServe(t, env)
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Sync on connect: the seeded profiles are started, the ACL reloaded.
	if err := fs.Wait(ctx, func(s *esltest.Server) bool {
		return s.Count("api sofia profile internal start") == 1 && s.Count("api sofia profile external-ipv4 start") == 1 &&
			s.Count("api reloadacl") >= 1
	}); err != nil {
		t.Fatalf("no start-up sync: %v\n%v", err, fs.Commands())
	}

	code, body := do(t, http.MethodPost, base+"/api/v1/sip/trunks", token, "application/json",
		`{"preset":"plusnet","name":"plusnet","numbers":["+493455667290"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create trunk: %d %s", code, body)
	}
	if err := fs.Wait(ctx, func(s *esltest.Server) bool {
		return s.Count("api sofia profile external-ipv4 rescan") >= 1
	}); err != nil {
		t.Fatalf("the new trunk did not become a rescan: %v\n%v", err, fs.Commands())
	}
	for _, c := range fs.Commands() {
		if strings.Contains(c, "s3cret-esl") && !strings.HasPrefix(c, "auth ") {
			t.Fatalf("the ESL password leaked into a command: %q", c)
		}
	}

	code, body = do(t, http.MethodGet, base+"/api/v1/esl/nodes", token, "", "")
	if code != http.StatusOK || !strings.Contains(body, fs.Addr()) || !strings.Contains(body, `"connected"`) {
		t.Fatalf("esl nodes: %d %s", code, body)
	}
	code, body = do(t, http.MethodGet, base+"/readyz", "", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"freeswitch"`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if strings.Contains(stderr.String(), "s3cret-esl") {
		t.Fatal("the ESL password is in the log")
	}

	// FreeSWITCH away: fsplane stays ready (degraded), never down.
	fs.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body = do(t, http.MethodGet, base+"/readyz", "", "", "")
		if strings.Contains(body, `"degraded"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusOK || !strings.Contains(body, `"degraded"`) {
		t.Fatalf("readyz with FreeSWITCH gone: %d %s", code, body)
	}
}

// FreeSWITCH waiting for fsplane (the runbook's start-up race): fsplane's
// first command over the event socket, and its `load mod_sofia` which makes
// FreeSWITCH fetch sofia.conf at once, arrive only when fsplane's HTTP port
// already answers that fetch. The fake node fetches sofia.conf from
// fsplane the moment each command arrives, as FreeSWITCH would.
func TestServeListensBeforeDialling(t *testing.T) {
	// A port of our own, known before serve starts, as FreeSWITCH's
	// xml_curl.conf knows it.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()

	type fetch struct {
		line string
		err  error
	}
	var mu sync.Mutex
	var fetches []fetch
	loadFetched := make(chan struct{})
	var loadOnce sync.Once
	client := &http.Client{Timeout: 10 * time.Second}
	fetchSofia := func() error {
		form := "hostname=fs1&section=configuration&tag_name=configuration&key_name=name&key_value=sofia.conf&Event-Name=REQUEST_PARAMS"
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/sip/xml-curl", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("freeswitch", "xml-pass")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<configuration name="sofia.conf"`) {
			return fmt.Errorf("xml-curl answered %d: %.200s", resp.StatusCode, body)
		}
		return nil
	}
	fs := esltest.Start(t, esltest.Options{SofiaMissing: true, OnLoad: []string{"internal", "external-ipv4"}})
	fs.OnCommand(func(line string, _ time.Time) {
		mu.Lock()
		first := len(fetches) == 0
		mu.Unlock()
		if !first && line != "api load mod_sofia" {
			return
		}
		err := fetchSofia()
		mu.Lock()
		fetches = append(fetches, fetch{line, err})
		mu.Unlock()
		if line == "api load mod_sofia" {
			loadOnce.Do(func() { close(loadFetched) })
		}
	})

	env := map[string]string{
		"FSPLANE_DATA_DIR":         t.TempDir(),
		"FSPLANE_EXTERNAL_IPV4":    "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":    "2a01:4f8:140:829d::2",
		"FSPLANE_ESL_NODES":        fs.Addr(),
		"FSPLANE_XMLCURL_USER":     "freeswitch",
		"FSPLANE_XMLCURL_PASSWORD": "xml-pass",
	}
	startServe(t, env, "--listen", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-loadFetched:
	case <-ctx.Done():
		t.Fatalf("fsplane never loaded mod_sofia:\n%v", fs.Commands())
	}
	mu.Lock()
	defer mu.Unlock()
	var loaded bool
	for i, f := range fetches {
		if f.err != nil {
			t.Errorf("sofia.conf fetch when %q arrived (command %d seen): %v", f.line, i+1, f.err)
		}
		loaded = loaded || f.line == "api load mod_sofia"
	}
	if len(fetches) == 0 || !loaded {
		t.Fatalf("the hook did not run for the first command and the load: %+v", fetches)
	}
}
