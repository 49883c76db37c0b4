package firewall

import (
	"errors"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
)

func ufwLines(pol *Policy) []string {
	var out []string
	for _, r := range pol.Rules {
		out = append(out, r.UFW())
	}
	return out
}

func TestPolicyRefusesBadInput(t *testing.T) {
	ok := models.ProviderRange{Provider: "plusnet", CIDR: "92.197.176.0/24", Ports: models.StringList{"5060/udp"}}
	for _, tc := range []struct {
		name    string
		r       models.ProviderRange
		p       models.Profile
		wantErr string
	}{
		{name: "quote in provider", r: models.ProviderRange{Provider: "Plus'net", CIDR: "10.0.0.0/8"}, wantErr: `provider name "Plus'net"`},
		{name: "newline in provider", r: models.ProviderRange{Provider: "a\nufw disable", CIDR: "10.0.0.0/8"}, wantErr: `provider name "a\nufw disable"`},
		{name: "ampersand in provider", r: models.ProviderRange{Provider: "1&1", CIDR: "10.0.0.0/8"}, wantErr: `provider name "1&1"`},
		{name: "space in provider", r: models.ProviderRange{Provider: "Plus net", CIDR: "10.0.0.0/8"}, wantErr: `provider name "Plus net"`},
		{name: "empty provider", r: models.ProviderRange{CIDR: "10.0.0.0/8"}, wantErr: `provider name ""`},
		{name: "reserved provider", r: models.ProviderRange{Provider: "general", CIDR: "10.0.0.0/8"}, wantErr: `"general" is reserved`},
		{name: "bad CIDR", r: models.ProviderRange{Provider: "plusnet", CIDR: "92.197.176.0/40"}, wantErr: `provider plusnet: firewall: invalid value: "92.197.176.0/40" is not a CIDR`},
		{name: "whole internet", r: models.ProviderRange{Provider: "plusnet", CIDR: "::/0"}, wantErr: `CIDR "::/0" admits every address`},
		{name: "bad port", r: models.ProviderRange{Provider: "plusnet", CIDR: "10.0.0.0/8", Ports: models.StringList{"5060/udp", "5061/sctp"}}, wantErr: `CIDR 10.0.0.0/8: firewall: invalid value: port "5061/sctp"`},
		{name: "bad wss", p: models.Profile{Name: "internal", WSSBinding: ":74430"}, wantErr: `profile "internal": wss-binding ":74430"`},
		{name: "bad wss host", p: models.Profile{Name: "internal", WSSBinding: "[::1:7443"}, wantErr: `wss-binding "[::1:7443"`},
		{name: "half RTP", p: models.Profile{Name: "internal", RTPPortMin: 16384}, wantErr: `profile "internal": RTP ports 16384:0`},
		{name: "reversed RTP", p: models.Profile{Name: "internal", RTPPortMin: 20000, RTPPortMax: 10000}, wantErr: `RTP ports 20000:10000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ranges := []models.ProviderRange{ok}
			if tc.r.Provider != "" || tc.r.CIDR != "" {
				ranges = append(ranges, tc.r)
			}
			pol, err := NewPolicy(ranges, []models.Profile{tc.p})
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewPolicy = %v, %v; want error containing %q", pol, err, tc.wantErr)
			}
			for _, f := range []string{FormatUFW, FormatNFT, FormatJSON} {
				if _, _, err := Export(f, ranges, []models.Profile{tc.p}); !errors.Is(err, ErrInvalid) {
					t.Errorf("Export(%s) error = %v, want ErrInvalid", f, err)
				}
			}
			if tc.r.CIDR != "" {
				if err := ValidateRange(tc.r); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("ValidateRange = %v", err)
				}
				if _, _, err := Export(FormatACL, ranges, nil); !errors.Is(err, ErrInvalid) {
					t.Errorf("Export(acl) error = %v, want ErrInvalid", err)
				}
			}
		})
	}
}

func TestPolicyReportsEveryBadValue(t *testing.T) {
	_, err := NewPolicy([]models.ProviderRange{
		{Provider: "a", CIDR: "300.0.0.0/8"},
		{Provider: "b", CIDR: "10.0.0.0/8", Ports: models.StringList{"70000/udp"}},
	}, []models.Profile{{Name: "p", WSSBinding: "x"}})
	for _, want := range []string{`"300.0.0.0/8"`, `"70000/udp"`, `wss-binding "x"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestPolicyRules(t *testing.T) {
	ranges := []models.ProviderRange{
		// No ports: SIP over UDP.
		{Provider: "sipgate", CIDR: "217.10.68.0/24"},
		// Contained in the /24 of the same provider: merged away.
		{Provider: "sipgate", CIDR: "217.10.68.128/25", Ports: models.StringList{"5060/udp"}},
		// Same network and port as sipgate: one rule naming both, since
		// UFW keeps one comment per rule.
		{Provider: "easybell", CIDR: "217.10.68.0/24", Ports: models.StringList{"5060/udp", "5060/udp", "5062:5064/tcp"}},
		// Another provider's network inside sipgate's: kept, it is theirs.
		{Provider: "easybell", CIDR: "217.10.68.7", Ports: models.StringList{"5080/udp"}},
	}
	profiles := []models.Profile{
		{Name: "a", WSSBinding: "0.0.0.0:7443", RTPPortMin: 16384, RTPPortMax: 16484},
		{Name: "b", WSSBinding: "[::]:7443", RTPPortMin: 16384, RTPPortMax: 16484},
		{Name: "c", WSSBinding: "8443"},
		{Name: "d"},
	}
	pol, err := NewPolicy(ranges, profiles)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ufw allow from 217.10.68.0/24 to any port 5062:5064 proto tcp comment 'fsplane:easybell'",
		"ufw allow from 217.10.68.7 to any port 5080 proto udp comment 'fsplane:easybell'",
		"ufw allow from 217.10.68.0/24 to any port 5060 proto udp comment 'fsplane:easybell+sipgate'",
		"ufw allow 7443/tcp comment 'fsplane:general'",
		"ufw allow 8443/tcp comment 'fsplane:general'",
		"ufw allow 16384:16484/udp comment 'fsplane:general'",
	}
	if got := ufwLines(pol); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Input order does not matter.
	for i, j := 0, len(ranges)-1; i < j; i, j = i+1, j-1 {
		ranges[i], ranges[j] = ranges[j], ranges[i]
	}
	pol2, err := NewPolicy(ranges, profiles)
	if err != nil {
		t.Fatal(err)
	}
	if string(pol2.UFW()) != string(pol.UFW()) || string(pol2.NFT()) != string(pol.NFT()) {
		t.Error("output depends on input order")
	}
}
