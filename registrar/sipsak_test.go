package registrar_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/registrar"
)

// sipsak (Debian's sipsak, MD5 only, reads the first challenge) registers
// a contact and the registrar lists it.
func TestSipsakRegistersMD5(t *testing.T) {
	bin, err := exec.LookPath("sipsak")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipsak is missing; under CI=true it is required (scripts/test-peers.sh installs it)")
		}
		t.Skip("sipsak not installed (scripts/test-peers.sh)")
	}
	// sipsak resolves the URI's host even with an outbound proxy: the
	// domain is an address here. Without -u it sends the username "1000@".
	s := modelstest.Open(t, "sqlite", modelstest.Options{})
	if err := s.CreateExtension(context.Background(), &models.Extension{Domain: "127.0.0.1", UserID: "1000",
		Password: ptr("sipsak-pw-1000"), Context: "default", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	f := start(t, registrar.Options{Store: s, Algorithms: []string{"MD5", "SHA-256"}})
	out, err := exec.Command(bin, "-U", "-s", "sip:1000@127.0.0.1", "-p", f.udp, "-H", "127.0.0.1",
		"-u", "1000", "-a", "sipsak-pw-1000", "-x", "600", "-C", "sip:1000@127.0.0.1:7009", "-vv").CombinedOutput()
	found := false
	for _, b := range f.reg.List() {
		if b.AOR == "1000@127.0.0.1" && b.Contact == "sip:1000@127.0.0.1:7009" {
			found = true
		}
	}
	if !found {
		t.Fatalf("sipsak's contact not bound (%v):\n%s", err, out)
	}
}
