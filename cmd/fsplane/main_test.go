package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/secrets"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// startServe runs `fsplane serve` until the test ends and returns its
// address and stderr.
func startServe(t testing.TB, env map[string]string, args ...string) (string, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), io.Discard, stderr, envOf(env), ready)
	}()
	var once sync.Once
	rc := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case rc = <-done:
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop")
			}
		})
		return rc
	}
	select {
	case addr := <-ready:
		t.Cleanup(func() { stop() })
		return addr, stderr, stop
	case rc := <-done:
		cancel()
		t.Fatalf("serve exited with %d:\n%s", rc, stderr.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("serve did not start:\n%s", stderr.String())
	}
	return "", nil, nil
}

var tokenRe = regexp.MustCompile(`fsp_[A-Za-z0-9_-]{43}`)

func TestFirstStartThenReuse(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"FSPLANE_DATA_DIR": dir}
	addr, stderr, stop := startServe(t, env)

	out := stderr.String()
	keyFile := filepath.Join(dir, "fernet.keys")
	if !strings.Contains(out, keyFile) || !strings.Contains(out, filepath.Join(dir, "fsplane.db")) {
		t.Fatalf("first start must say where the key file and database are:\n%s", out)
	}
	token := tokenRe.FindString(out)
	if token == "" {
		t.Fatalf("first start printed no admin token:\n%s", out)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v", err, st.Mode().Perm())
	}
	if st, err := os.Stat(filepath.Join(dir, "fsplane.db")); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("database file must not be readable by others: %v %v", err, st.Mode().Perm())
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Status string
		Checks map[string]struct{ Status string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || ready.Checks["database"].Status != "ok" {
		t.Fatalf("readyz: %d %+v", resp.StatusCode, ready)
	}
	if rc := stop(); rc != 0 {
		t.Fatalf("serve exit %d:\n%s", rc, stderr.String())
	}
	keyBefore, _ := os.ReadFile(keyFile)

	// Second start: same key, no new token printed, the first token valid.
	_, stderr2, stop2 := startServe(t, env)
	if tokenRe.MatchString(stderr2.String()) || strings.Contains(stderr2.String(), "first start") {
		t.Fatalf("second start printed a token again:\n%s", stderr2.String())
	}
	stop2()
	keyAfter, _ := os.ReadFile(keyFile)
	if !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("second start replaced the key file")
	}
	kr, err := secrets.LoadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := models.Open(context.Background(), models.Config{SQLitePath: filepath.Join(dir, "fsplane.db"), Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, err := s.TokenByHash(context.Background(), auth.Hash(token))
	if err != nil || len(tok.Scopes) != 1 || tok.Scopes[0] != auth.ScopeAdmin {
		t.Fatalf("admin token in the database: %v %+v", err, tok)
	}
	if n, _ := s.CountTokens(context.Background()); n != 1 {
		t.Fatalf("%d tokens after two starts, want 1", n)
	}
}

func TestServeRefusesWrongKey(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"FSPLANE_DATA_DIR": dir}
	_, _, stop := startServe(t, env)
	stop()
	// Store a trunk password under the generated key.
	kr, _ := secrets.LoadFile(filepath.Join(dir, "fernet.keys"))
	s, err := models.Open(context.Background(), models.Config{SQLitePath: filepath.Join(dir, "fsplane.db"), Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	pw := "Top-Secret-Trunk-Pw"
	if err := s.CreateTrunk(context.Background(), &models.Trunk{Name: "einsundeins", Profile: "internal", Enabled: true, Register: true, Username: "4934556", Password: &pw}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	other, _ := secrets.GenerateKey()
	env["FSPLANE_FERNET_KEYS"] = other
	var stderr bytes.Buffer
	rc := runContext(context.Background(), []string{"serve", "--listen", "127.0.0.1:0"}, io.Discard, &stderr, envOf(env), nil)
	msg := stderr.String()
	if rc == 0 || !strings.Contains(msg, `trunk "einsundeins"`) {
		t.Fatalf("serve with a wrong key: rc=%d, want an error naming the trunk:\n%s", rc, msg)
	}
	if strings.Contains(msg, pw) || strings.Contains(msg, other) {
		t.Fatalf("error leaks a secret:\n%s", msg)
	}
}

func TestTokenCreatePrintsTokenAlone(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"FSPLANE_DATA_DIR": dir}
	var stdout, stderr bytes.Buffer
	rc := runContext(context.Background(), []string{"token", "create", "--scope", "sip:read,firewall:read", "--name", "grafana"}, &stdout, &stderr, envOf(env), nil)
	if rc != 0 {
		t.Fatalf("rc=%d: %s", rc, stderr.String())
	}
	out := stdout.String()
	if !regexp.MustCompile(`^fsp_[A-Za-z0-9_-]{43}\n$`).MatchString(out) {
		t.Fatalf("stdout must be the token alone, got %q", out)
	}
	stdout.Reset()
	rc = runContext(context.Background(), []string{"token", "create", "--scope", "root"}, &stdout, &stderr, envOf(env), nil)
	if rc == 0 || stdout.Len() != 0 || !strings.Contains(stderr.String(), `unknown scope "root"`) {
		t.Fatalf("bad scope: rc=%d stdout=%q stderr=%q", rc, stdout.String(), stderr.String())
	}
}

func TestKeysRotateCommand(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"FSPLANE_DATA_DIR": dir}
	keyFile := filepath.Join(dir, "fernet.keys")
	kr, _, err := secrets.EnsureFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := models.Open(context.Background(), models.Config{SQLitePath: filepath.Join(dir, "fsplane.db"), Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	pw := "pw-1"
	if err := s.CreateExtension(context.Background(), &models.Extension{Domain: "d", UserID: "1000", Password: &pw, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	var stderr bytes.Buffer
	if rc := runContext(context.Background(), []string{"keys", "rotate", "--new"}, io.Discard, &stderr, envOf(env), nil); rc != 0 {
		t.Fatalf("keys rotate --new: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "re-sealed 1 passwords under the newest of 2 keys") {
		t.Fatalf("unexpected report: %s", stderr.String())
	}
	both, err := secrets.LoadFile(keyFile)
	if err != nil || both.Len() != 2 {
		t.Fatalf("key file after --new: %v", err)
	}
	// Only the new key is needed now.
	onlyNew, _ := secrets.Parse(both.Encoded()[0])
	s, _ = models.Open(context.Background(), models.Config{SQLitePath: filepath.Join(dir, "fsplane.db"), Keys: onlyNew})
	defer s.Close()
	if err := s.VerifySecrets(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsAreClear(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"FSPLANE_LISTEN": "8001"}, nil, "FSPLANE_LISTEN"},
		{nil, []string{"--listen", "host"}, "FSPLANE_LISTEN"},
		{map[string]string{"FSPLANE_ESL_NODES": "fs1"}, nil, "FSPLANE_ESL_NODES"},
		{map[string]string{"FSPLANE_FERNET_KEYS": "short"}, nil, "FSPLANE_FERNET_KEYS"},
		{map[string]string{"FSPLANE_XMLCURL_USER": "fs"}, nil, "FSPLANE_XMLCURL_PASSWORD"},
		{map[string]string{"FSPLANE_LOG_LEVEL": "loud"}, nil, "FSPLANE_LOG_LEVEL"},
		{map[string]string{"FSPLANE_XMLCURL_NETWORKS": "10.0.0.0/33"}, nil, "FSPLANE_XMLCURL_NETWORKS"},
	} {
		env := map[string]string{"FSPLANE_DATA_DIR": t.TempDir()}
		for k, v := range tc.env {
			env[k] = v
		}
		var stderr bytes.Buffer
		rc := runContext(context.Background(), append([]string{"serve"}, tc.args...), io.Discard, &stderr, envOf(env), nil)
		if rc == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("env %v args %v: rc=%d, want an error naming %s, got %q", tc.env, tc.args, rc, tc.want, stderr.String())
		}
	}
}

func TestServeOnPostgres(t *testing.T) {
	// A schema of our own so parallel packages don't collide.
	s := modelstest.Open(t, "postgres", modelstest.Options{NoMigrate: true})
	url := modelstest.URLOf(t, s)
	env := map[string]string{"FSPLANE_DATA_DIR": t.TempDir(), "DATABASE_URL": url}
	_, stderr, stop := startServe(t, env)
	if !strings.Contains(stderr.String(), "PostgreSQL") || tokenRe.FindString(stderr.String()) == "" {
		t.Fatalf("first start on PostgreSQL:\n%s", stderr.String())
	}
	stop()
	if _, err := os.Stat(filepath.Join(env["FSPLANE_DATA_DIR"], "fsplane.db")); !os.IsNotExist(err) {
		t.Fatal("an SQLite file was created although DATABASE_URL is set")
	}
}

// --log-format json writes one JSON object a line, for log shippers.
func TestLogFormatJSON(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&buf, "info", "json").Info("hello", "component", "api")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "hello" || line["component"] != "api" {
		t.Fatalf("not a JSON line: %q (%v)", buf.String(), err)
	}
	buf.Reset()
	newLogger(&buf, "info", "text").Info("hello")
	if strings.HasPrefix(buf.String(), "{") {
		t.Fatalf("text format wrote JSON: %q", buf.String())
	}
}
