package xmlcurl

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the expected answers in testdata/golden")

const goldenSeparator = "-----\n"

// TestGolden renders every file in testdata/golden: the POST body (one
// line, as FreeSWITCH sent it), a separator line, and the expected answer,
// against the seed fixture. Most bodies are the captured ones verbatim.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	f := newFixture(t, "sqlite", Options{Cacheable: time.Minute})
	seed(t, f.s)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			body, want, ok := strings.Cut(string(raw), goldenSeparator)
			if !ok {
				t.Fatalf("%s has no separator line %q", file, strings.TrimSpace(goldenSeparator))
			}
			body = strings.TrimSuffix(body, "\n")
			code, got := f.post(t, body)
			if code != http.StatusOK {
				t.Fatalf("status %d\n%s", code, got)
			}
			parseDoc(t, got)
			assertSurvivesPreprocess(t, got)
			if *update {
				if err := os.WriteFile(file, []byte(body+"\n"+goldenSeparator+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("answer differs from %s (run go test -run TestGolden -update to accept)\ngot:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}
