package firewall

import (
	"errors"
	"testing"

	"github.com/fsplane/fsplane/models"
)

// TestGeneralPorts: ports handed in (the federation's 5061/tcp) become
// general rules, once, beside the profiles'; nonsense is refused.
func TestGeneralPorts(t *testing.T) {
	profiles := []models.Profile{{Name: "internal", WSSBinding: ":7443"}}
	fed := PortSpec{From: 5061, To: 5061, Proto: "tcp"}
	pol, err := NewPolicy(nil, profiles, fed, fed, PortSpec{From: 7443, To: 7443, Proto: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range pol.Rules {
		got = append(got, r.UFW())
	}
	want := []string{"ufw allow 5061/tcp comment 'fsplane:general'", "ufw allow 7443/tcp comment 'fsplane:general'"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("rules %q, want %q", got, want)
	}
	if _, err := NewPolicy(nil, nil, PortSpec{From: 5061, To: 5061, Proto: "sctp"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("sctp: %v", err)
	}
}
