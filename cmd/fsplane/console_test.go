package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// serve mounts the console at /ui/, its writes go through the API (the
// audit log names the token), and a live-update stream that is open at
// shutdown does not hold the drain.
func TestServeMountsConsole(t *testing.T) {
	env := map[string]string{
		"FSPLANE_DATA_DIR":      t.TempDir(),
		"FSPLANE_EXTERNAL_IPV4": "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6": "2a01:4f8:140:829d::2",
	}
	addr, stderr, stop := startServe(t, env)
	token := tokenRe.FindString(stderr.String())
	base := "http://" + addr
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	csrfRe := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	get := func(path string) string {
		t.Helper()
		res, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, res.StatusCode, b)
		}
		return string(b)
	}
	post := func(path string, form url.Values, page string) (*http.Response, string) {
		t.Helper()
		form.Set("csrf", csrfRe.FindStringSubmatch(page)[1])
		res, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	login := get("/ui/")
	if !strings.Contains(login, `name="token"`) {
		t.Fatalf("/ui/ without a session is not the login page:\n%s", login)
	}
	res, page := post("/ui/login", url.Values{"token": {token}}, login)
	if res.Request.URL.Path != "/ui/trunks" {
		t.Fatalf("login ended at %s:\n%s", res.Request.URL, page)
	}
	res, page = post("/ui/trunks", url.Values{"preset": {"plusnet"}, "name": {"plusnet"}, "numbers": {"+493455667290"}}, page)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `data-trunk="plusnet"`) {
		t.Fatalf("create from the console: %d at %s\n%s", res.StatusCode, res.Request.URL, page)
	}
	code, body := do(t, http.MethodGet, base+"/api/v1/audit", token, "", "")
	if code != http.StatusOK || !strings.Contains(body, `"actor":"admin (first start)"`) || !strings.Contains(body, `"name":"plusnet"`) {
		t.Fatalf("the console's write is not audited under the token: %d %s", code, body)
	}

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/ui/events", nil)
	sse, err := c.Do(req)
	if err != nil || sse.StatusCode != http.StatusOK {
		t.Fatalf("/ui/events: %v %v", err, sse)
	}
	defer sse.Body.Close()
	r := bufio.NewReader(sse.Body)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "retry:") {
		t.Fatalf("stream starts with %q", line)
	}
	if rc := stop(); rc != 0 {
		t.Fatalf("serve exited %d:\n%s", rc, stderr.String())
	}
	_, _ = io.Copy(io.Discard, r) // ends: the stream was closed at shutdown
	if strings.Contains(stderr.String(), "cut off") {
		t.Errorf("an open live-update stream held the shutdown drain:\n%s", stderr.String())
	}
}
