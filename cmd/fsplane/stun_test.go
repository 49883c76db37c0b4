package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	pion "github.com/pion/stun/v3"
)

// runStunServe runs `fsplane stun serve` until the test ends and returns
// A1:P1.
func runStunServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, append([]string{"stun", "serve"}, args...), io.Discard, stderr, envOf(nil), ready)
	}()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if rc := <-done; rc != 0 {
				t.Errorf("stun serve exited %d:\n%s", rc, stderr)
			}
		})
		return addr
	case rc := <-done:
		cancel()
		t.Fatalf("stun serve exited %d:\n%s", rc, stderr)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("stun serve did not start")
	}
	return ""
}

func TestStunServeAndProbe(t *testing.T) {
	addr := runStunServe(t, "--primary", "127.0.0.1:0", "--secondary", "127.0.0.2:0")
	var out strings.Builder
	if rc := run([]string{"stun", "probe", "--server", addr, "--json", "--timeout", "500ms"}, &out, io.Discard, envOf(nil)); rc != 0 {
		t.Fatalf("probe exit %d", rc)
	}
	var res map[string]string
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	// On loopback there is no NAT and no firewall.
	if res["nat_type"] != "open" || res["mapping"] != "endpoint-independent" || res["filtering"] != "endpoint-independent" ||
		res["public_address"] != res["local_address"] || !strings.HasPrefix(res["public_address"], "127.0.0.1:") {
		t.Fatalf("probe: %s", out.String())
	}
	out.Reset()
	if rc := run([]string{"stun", "probe", "--server", addr, "--timeout", "500ms"}, &out, io.Discard, envOf(nil)); rc != 0 || !strings.Contains(out.String(), "NAT type:       Open Internet (open)") {
		t.Fatalf("probe exit %d:\n%s", rc, out.String())
	}
}

func TestStunServeRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stun", "serve"}, "--primary (or FSPLANE_STUN_PRIMARY) is required"},
		{[]string{"stun", "serve", "--primary", "127.0.0.1:3478", "--secondary", "127.0.0.1:3478"}, "must differ from the primary"},
		{[]string{"stun", "serve", "--primary", "localhost:3478"}, "--primary: FSPLANE_STUN_PRIMARY: \"localhost:3478\" is not IP:port"},
		{[]string{"stun", "probe"}, "--server HOST:PORT is required"},
	} {
		var stderr strings.Builder
		if rc := run(tc.args, io.Discard, &stderr, envOf(nil)); rc == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error with %q", tc.args, rc, stderr.String(), tc.want)
		}
	}
}

// serve runs the responder when FSPLANE_STUN_PRIMARY is set, shows it on
// /readyz and its metrics on /metrics.
func TestServeRunsSTUN(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stunAddr := pc.LocalAddr().String()
	pc.Close()
	addr, stderr, _ := startServe(t, map[string]string{"FSPLANE_DATA_DIR": t.TempDir(), "FSPLANE_STUN_PRIMARY": stunAddr})

	c, err := net.Dial("udp", stunAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := pion.MustBuild(pion.TransactionID, pion.BindingRequest, pion.Fingerprint)
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no STUN answer from serve: %v\n%s", err, stderr)
	}
	m := pion.New()
	var xa pion.XORMappedAddress
	if err := pion.Decode(buf[:n], m); err != nil || xa.GetFrom(m) != nil || xa.String() != c.LocalAddr().String() {
		t.Fatalf("answer %v: %v", m, err)
	}
	if m.Contains(pion.AttrOtherAddress) {
		t.Fatal("OTHER-ADDRESS without a secondary")
	}

	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Checks map[string]struct{ Status string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if ready.Checks["stun"].Status != "ok" {
		t.Fatalf("readyz: %+v", ready)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `fsplane_stun_requests_total{kind="rfc5389",socket="A1:P1",transport="udp"} 1`) {
		t.Fatalf("metrics lack the request:\n%s", body)
	}
}

// Without FSPLANE_STUN_PRIMARY there is no responder.
func TestServeWithoutSTUN(t *testing.T) {
	addr, _, _ := startServe(t, map[string]string{"FSPLANE_DATA_DIR": t.TempDir()})
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Checks map[string]struct{ Status string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if _, ok := ready.Checks["stun"]; ok || len(ready.Checks) == 0 {
		t.Fatalf("readyz: %+v", ready)
	}
}

// freeUDPPort finds a port free on 127.0.0.1 and 127.0.0.2 for UDP and
// on 127.0.0.1 for TCP.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		ok := true
		for _, a := range []string{"127.0.0.2", "127.0.0.1"} {
			if c, err := net.ListenPacket("udp", net.JoinHostPort(a, strconv.Itoa(port))); err == nil {
				c.Close()
			} else {
				ok = false
			}
		}
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
		} else {
			ok = false
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// "Use public address": serve probes FSPLANE_STUN_PROBE_SERVER (here its
// own responder), shows the result on GET /api/v1/stun/probe, and sets
// ext_sip_ip and ext_rtp_ip of the profiles asking for it, through the
// normal write path (the version moves).
func TestServeUsePublicAddress(t *testing.T) {
	p1, p2 := freeUDPPort(t), freeUDPPort(t)
	primary := "127.0.0.1:" + strconv.Itoa(p1)
	addr, stderr, _ := startServe(t, map[string]string{
		"FSPLANE_DATA_DIR": t.TempDir(), "FSPLANE_STUN_PRIMARY": primary, "FSPLANE_STUN_SECONDARY": "127.0.0.2:" + strconv.Itoa(p2),
		"FSPLANE_STUN_PROBE_SERVER": primary, "FSPLANE_STUN_PROBE_INTERVAL": "100ms",
	})
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr
	code, body := do(t, "POST", base+"/api/v1/sip/profiles", token, "application/json",
		`{"name":"natted","family":"ipv4","sip_ip":"127.0.0.1","sip_port":5090,"ext_sip_ip":"192.0.2.1","ext_rtp_ip":"192.0.2.1","use_public_address":true}`)
	if code != http.StatusCreated || !strings.Contains(body, `"use_public_address":true`) {
		t.Fatalf("create: %d %s", code, body)
	}
	var prof map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body = do(t, "GET", base+"/api/v1/sip/profiles/natted", token, "", "")
		_ = json.Unmarshal([]byte(body), &prof)
		if prof["ext_sip_ip"] == "127.0.0.1" && prof["ext_rtp_ip"] == "127.0.0.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the profile did not follow the public address: %d %s\n%s", code, body, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if prof["version"] != float64(2) {
		t.Fatalf("want one write (version 2), got %v", prof["version"])
	}
	// Federation settings that ask for it follow too, with the NAT type.
	code, body = do(t, "PUT", base+"/api/v1/federation", token, "application/json",
		`{"enabled":false,"domain":"example.com","fqdn":"sip.example.com","mode":"open","port":5061,"use_public_address":true,"public_address":"192.0.2.1"}`)
	if code != http.StatusOK {
		t.Fatalf("federation: %d %s", code, body)
	}
	var fed map[string]any
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, body = do(t, "GET", base+"/api/v1/federation", token, "", "")
		_ = json.Unmarshal([]byte(body), &fed)
		if fed["public_address"] == "127.0.0.1" && fed["nat_type"] == "open" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the federation did not follow the public address: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The seeded profiles did not ask for it.
	if _, body := do(t, "GET", base+"/api/v1/sip/profiles", token, "", ""); strings.Count(body, `"use_public_address":true`) != 1 {
		t.Fatalf("profiles: %s", body)
	}
	code, body = do(t, "GET", base+"/api/v1/stun/probe", token, "", "")
	var res map[string]any
	if err := json.Unmarshal([]byte(body), &res); code != http.StatusOK || err != nil {
		t.Fatalf("probe: %d %s", code, body)
	}
	if res["nat_type"] != "open" || res["mapping"] != "endpoint-independent" || res["filtering"] != "endpoint-independent" ||
		!strings.HasPrefix(res["public_address"].(string), "127.0.0.1:") || res["checked_at"] == nil {
		t.Fatalf("probe: %s", body)
	}
	if code, _ := do(t, "GET", base+"/api/v1/stun/probe", "", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
}

func TestServeNoSTUNProbe(t *testing.T) {
	addr, stderr, _ := startServe(t, map[string]string{"FSPLANE_DATA_DIR": t.TempDir()})
	token := tokenRe.FindString(stderr.String())
	if code, body := do(t, "GET", "http://"+addr+"/api/v1/stun/probe", token, "", ""); code != http.StatusNotFound || !strings.Contains(body, "FSPLANE_STUN_PROBE_SERVER") {
		t.Fatalf("%d %s", code, body)
	}
}

// The same over IPv6: an ipv6 profile follows the IPv6 public address
// (here ::1; a responder without a secondary: type unknown, address known).
func TestServeUsePublicAddressIPv6(t *testing.T) {
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	primary := net.JoinHostPort("::1", strconv.Itoa(port))
	addr, stderr, _ := startServe(t, map[string]string{
		"FSPLANE_DATA_DIR": t.TempDir(), "FSPLANE_STUN_PRIMARY": primary,
		"FSPLANE_STUN_PROBE_SERVER": primary, "FSPLANE_STUN_PROBE_INTERVAL": "100ms",
	})
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr
	code, body := do(t, "POST", base+"/api/v1/sip/profiles", token, "application/json",
		`{"name":"v6","family":"ipv6","sip_ip":"::1","sip_port":5092,"ext_sip_ip":"2001:db8::1","ext_rtp_ip":"2001:db8::1","use_public_address":true}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var prof map[string]any
		_, body = do(t, "GET", base+"/api/v1/sip/profiles/v6", token, "", "")
		_ = json.Unmarshal([]byte(body), &prof)
		if prof["ext_sip_ip"] == "::1" && prof["ext_rtp_ip"] == "::1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ipv6 profile did not follow: %s\n%s", body, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, body = do(t, "GET", base+"/api/v1/stun/probe", token, "", "")
	var res map[string]any
	_ = json.Unmarshal([]byte(body), &res)
	if res["nat_type"] != "unknown" || !strings.HasPrefix(fmt.Sprint(res["public_address"]), "[::1]:") {
		t.Fatalf("probe: %s", body)
	}
}
