package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTour runs docs/api.md: every ```sh block, as written, with real
// curl against the API on a real TCP port (only http://localhost:8001 is
// replaced by the test server's address), in order, on a freshly seeded
// database. A ```json or ```text block right after a command is the
// answer the doc promises: JSON must be contained in the real answer (a
// string ending in "..." is a prefix), text must match exactly. A command
// without a promised answer must use curl -f, so an HTTP error fails it.
// ```bash blocks (starting serve, exporting the token) are not run.
func TestTour(t *testing.T) {
	// README.md's short tour runs on a fresh database of its own.
	for _, doc := range []struct {
		path    string
		minRuns int
		openapi bool
	}{{"../docs/api.md", 20, true}, {"../README.md", 4, false}} {
		t.Run(filepath.Base(doc.path), func(t *testing.T) { runTour(t, doc.path, doc.minRuns, doc.openapi) })
	}
}

func runTour(t *testing.T, path string, minRuns int, wantOpenAPI bool) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is missing (scripts/test-peers.sh installs it)")
		}
		t.Skip("curl is missing")
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// FSPLANE_TOUR_URL and FSPLANE_TOUR_TOKEN run the tour against a real
	// `fsplane serve` on a fresh database instead (a manual check).
	base, token := os.Getenv("FSPLANE_TOUR_URL"), os.Getenv("FSPLANE_TOUR_TOKEN")
	if base == "" {
		ev := newEnv(t, "sqlite")
		srv := httptest.NewServer(ev.e)
		defer srv.Close()
		base, token = srv.URL, ev.tokens["admin"]
	}
	dir := t.TempDir()

	blocks := regexp.MustCompile("(?ms)^```(\\w*)\\n(.*?)^```\\n").FindAllStringSubmatch(string(doc), -1)
	ran := 0
	for i, b := range blocks {
		lang, body := b[1], b[2]
		if lang != "sh" {
			continue
		}
		ran++
		var want *[2]string
		if i+1 < len(blocks) && (blocks[i+1][1] == "json" || blocks[i+1][1] == "text") {
			want = &[2]string{blocks[i+1][1], blocks[i+1][2]}
		}
		if want == nil && !strings.Contains(body, "curl -sf") {
			t.Errorf("block %d promises no answer and does not use curl -sf:\n%s", i, body)
		}
		script := strings.ReplaceAll(body, "http://localhost:8001", base)
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + strings.TrimSuffix(curl, "/curl") + ":/usr/bin:/bin", "TOKEN=" + token, "HOME=" + dir}
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("block %d failed: %v\n%s\nstderr: %s\nstdout: %s", i, err, body, stderr.String(), out.String())
		}
		if want == nil {
			continue
		}
		switch want[0] {
		case "text":
			if strings.TrimSpace(out.String()) != strings.TrimSpace(want[1]) {
				t.Errorf("block %d:\n%s\nanswered %q, doc says %q", i, body, out.String(), want[1])
			}
		case "json":
			var got, exp any
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("block %d answered non-JSON %q: %v", i, out.String(), err)
			}
			if err := json.Unmarshal([]byte(want[1]), &exp); err != nil {
				t.Fatalf("doc's answer after block %d is not JSON: %v\n%s", i, err, want[1])
			}
			if err := contains(got, exp, "$"); err != nil {
				t.Errorf("block %d:\n%s\nanswer %s\ndoes not contain the doc's: %v", i, body, out.String(), err)
			}
		}
	}
	if ran < minRuns {
		t.Errorf("ran %d blocks; the tour has more", ran)
	}
	if !wantOpenAPI {
		return
	}
	if _, err := os.Stat(dir + "/openapi.json"); err != nil {
		t.Errorf("the tour's last step wrote no openapi.json: %v", err)
	}
}

// contains reports whether got has everything exp has: object keys with
// matching values, arrays of the same length element by element.
func contains(got, exp any, path string) error {
	switch e := exp.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %T, want an object", path, got)
		}
		for k, v := range e {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: missing", path, k)
			}
			if err := contains(gv, v, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(e) {
			return fmt.Errorf("%s: got %v, want %d elements", path, got, len(e))
		}
		for i := range e {
			if err := contains(g[i], e[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case string:
		g, ok := got.(string)
		if p, prefix := strings.CutSuffix(e, "..."); prefix {
			if !ok || !strings.HasPrefix(g, p) {
				return fmt.Errorf("%s: %q does not start with %q", path, got, p)
			}
		} else if !ok || g != e {
			return fmt.Errorf("%s: %q, want %q", path, got, e)
		}
	default:
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			return fmt.Errorf("%s: %v, want %v", path, got, exp)
		}
	}
	return nil
}
