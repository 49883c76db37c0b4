package registrar_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/fsplane/fsplane/registrar"
)

// FuzzRequestPath feeds arbitrary bytes through the registrar's parser and
// its whole request path (without the panic guard serve keeps): it must
// never panic, must answer every request but ACK (and one without Via,
// which cannot be answered) with a final status,
// and the answer must serialise into a message the parser reads back
// whenever the request itself does.
// Seeds: the RFC 4475 messages and testdata/fuzz/FuzzRequestPath.
// Run longer with: go test -run '^$' -fuzz FuzzRequestPath -fuzztime 60s ./registrar/
func FuzzRequestPath(f *testing.F) {
	files, err := filepath.Glob("testdata/rfc4475/*/*.dat")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	r, _ := tortureRegistrar(f)
	parser := registrar.NewParser()
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, err := parser.ParseSIP(raw)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("127.0.0.1:5099")
		req.SetTransport("UDP")
		res := r.AnswerUnguarded(req)
		if req.Method == sip.ACK || !registrar.Routable(req) {
			if res != nil {
				t.Fatalf("an ACK or a request without Via was answered: %v", res)
			}
			return
		}
		if res == nil {
			t.Fatal("a request went unanswered")
		}
		if res.StatusCode < 200 || res.StatusCode > 699 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if _, err := sip.ParseMessage([]byte(req.String())); err != nil {
			// sipgo read the request leniently and cannot write it back
			// readably (e.g. a From port "A"): the answer echoes those
			// headers, so it can be no more readable than the request.
			return
		}
		back, err := sip.ParseMessage([]byte(res.String()))
		if err != nil {
			t.Fatalf("the answer does not parse back: %v\n%s", err, res)
		}
		if got, ok := back.(*sip.Response); !ok || got.StatusCode != res.StatusCode {
			t.Fatalf("the answer parses back as %v", back)
		}
	})
}
