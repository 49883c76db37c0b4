package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/secrets"
)

// firewallEnv returns the environment of a data directory whose SQLite
// store holds the seed's provider ranges and profiles, plus what it holds.
func firewallEnv(t *testing.T, extra ...models.ProviderRange) (map[string]string, []models.ProviderRange, []models.Profile) {
	t.Helper()
	dir := t.TempDir()
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := models.Open(ctx, models.Config{SQLitePath: filepath.Join(dir, "fsplane.db"), Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ranges := append([]models.ProviderRange{
		{Provider: "plusnet", CIDR: "92.197.176.0/24", Ports: models.StringList{"5060/udp", "5061/tcp"}},
		{Provider: "plusnet", CIDR: "92.197.177.0/24", Ports: models.StringList{"5060/udp", "5061/tcp"}},
		{Provider: "plusnet", CIDR: "92.197.182.0/24", Ports: models.StringList{"5060/udp", "5061/tcp"}},
		{Provider: "1und1", CIDR: "2001:8d8:104:100:212:227:124:129/125", Ports: models.StringList{"5060/udp"}},
		{Provider: "1und1", CIDR: "212.227.124.0/24", Ports: models.StringList{}},
	}, extra...)
	for i := range ranges {
		if err := s.CreateRange(ctx, &ranges[i]); err != nil {
			t.Fatal(err)
		}
	}
	profiles := []models.Profile{
		{Name: "external-ipv4", Family: models.FamilyIPv4, BindIP: "46.4.96.105", SIPPort: 5060, RTPPortMin: 10000, RTPPortMax: 10060, Params: models.StringMap{}},
		{Name: "internal", Family: models.FamilyDual, BindIP: "::", SIPPort: 5060, TLS: true, TLSPort: 5061, WSSBinding: ":7443", RTPPortMin: 16384, RTPPortMax: 16484, Params: models.StringMap{}},
	}
	for i := range profiles {
		if err := s.CreateProfile(ctx, &profiles[i]); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]string{"FSPLANE_DATA_DIR": dir, "FSPLANE_FERNET_KEYS": key}, ranges, profiles
}

func runFsplane(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, rc int) {
	t.Helper()
	var out, errb bytes.Buffer
	rc = run(args, &out, &errb, envOf(env))
	return out.String(), errb.String(), rc
}

// TestFirewallExport: each format prints what firewall.Export renders
// from the stored rows; --provider narrows to one provider's rules.
func TestFirewallExport(t *testing.T) {
	env, ranges, profiles := firewallEnv(t)
	for _, format := range []string{firewall.FormatUFW, firewall.FormatNFT, firewall.FormatACL, firewall.FormatJSON} {
		out, stderr, rc := runFsplane(t, env, "firewall", "export", "--format", format)
		if rc != 0 {
			t.Fatalf("%s: rc %d: %s", format, rc, stderr)
		}
		want, _, err := firewall.Export(format, ranges, profiles)
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("%s:\n%s\nwant:\n%s", format, out, want)
		}
	}
	// The default format is ufw, and it carries the seed's rules.
	out, _, rc := runFsplane(t, env, "firewall", "export")
	for _, want := range []string{
		"ufw allow from 2001:8d8:104:100:212:227:124:128/125 to any port 5060 proto udp comment 'fsplane:1und1'\n",
		"ufw allow from 212.227.124.0/24 to any port 5060 proto udp comment 'fsplane:1und1'\n",
		"ufw allow from 92.197.182.0/24 to any port 5061 proto tcp comment 'fsplane:plusnet'\n",
		"ufw allow 16384:16484/udp comment 'fsplane:general'\n",
	} {
		if rc != 0 || !strings.Contains(out, want) {
			t.Errorf("default export (rc %d) lacks %q:\n%s", rc, want, out)
		}
	}

	out, stderr, rc := runFsplane(t, env, "firewall", "export", "--format", "ufw", "--provider", "plusnet")
	if rc != 0 || strings.Count(out, "\nufw allow") != 6 || strings.Contains(out, "1und1") || strings.Contains(out, "general") {
		t.Errorf("--provider plusnet (rc %d, %s):\n%s", rc, stderr, out)
	}
	out, _, rc = runFsplane(t, env, "firewall", "export", "--format", "acl", "--provider", "1und1")
	if rc != 0 || strings.Count(out, "<node ") != 2 || strings.Contains(out, "92.197") {
		t.Errorf("--provider 1und1 acl:\n%s", out)
	}
}

func TestFirewallExportRefuses(t *testing.T) {
	env, _, _ := firewallEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "iptables"}, `unknown format (want ufw, nft, acl or json): "iptables"`},
		{[]string{"--format", "nft", "--provider", "plusnet"}, "--provider cannot be used with --format nft"},
		{[]string{"--provider", "Plus'net"}, `--provider: firewall: invalid value: provider name "Plus'net"`},
		{[]string{"--provider", "sipgate"}, `no ranges stored for provider "sipgate"`},
	} {
		out, stderr, rc := runFsplane(t, env, append([]string{"firewall", "export"}, tc.args...)...)
		if rc == 0 || out != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: rc %d, stdout %q, stderr %q; want error containing %q", tc.args, rc, out, stderr, tc.want)
		}
	}

	// The store takes any text; export refuses a bad row, naming it.
	env, _, _ = firewallEnv(t, models.ProviderRange{Provider: "sipgate", CIDR: "217.10.68.0/33"})
	out, stderr, rc := runFsplane(t, env, "firewall", "export")
	if rc == 0 || out != "" || !strings.Contains(stderr, `"217.10.68.0/33" is not a CIDR`) {
		t.Errorf("bad stored CIDR: rc %d, stdout %q, stderr %q", rc, out, stderr)
	}
}

// ufw 0.36.2's `ufw status` with the seed's hand-written plusnet rules
// (no comments), one fsplane rule and a stale one.
const statusFixture = `Status: active

To                         Action      From
--                         ------      ----
5060/udp                   ALLOW       92.197.176.0/24           
5060/udp                   ALLOW       92.197.177.0/24           
5060/udp                   ALLOW       10.0.0.0/8                 # fsplane:Old
22/tcp                     ALLOW       Anywhere                  
7443/tcp                   ALLOW       Anywhere                   # fsplane:general
5060/udp                   ALLOW       2001:8d8:104:100:212:227:124:128/125 # fsplane:1und1
22/tcp (v6)                ALLOW       Anywhere (v6)             
7443/tcp (v6)              ALLOW       Anywhere (v6)              # fsplane:general
`

func TestFirewallDiff(t *testing.T) {
	env, _, _ := firewallEnv(t)
	from := filepath.Join(t.TempDir(), "status.txt")
	if err := os.WriteFile(from, []byte(statusFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, rc := runFsplane(t, env, "firewall", "diff", "--from", from)
	if rc != 0 {
		t.Fatalf("rc %d: %s", rc, stderr)
	}
	want := `# fsplane firewall diff: 7 to add, 2 to update, 1 to delete, 0 to review; 2 in sync.

# Add:
ufw allow from 212.227.124.0/24 to any port 5060 proto udp comment 'fsplane:1und1'
ufw allow from 92.197.182.0/24 to any port 5060 proto udp comment 'fsplane:plusnet'
ufw allow from 92.197.176.0/24 to any port 5061 proto tcp comment 'fsplane:plusnet'
ufw allow from 92.197.177.0/24 to any port 5061 proto tcp comment 'fsplane:plusnet'
ufw allow from 92.197.182.0/24 to any port 5061 proto tcp comment 'fsplane:plusnet'
ufw allow 10000:10060/udp comment 'fsplane:general'
ufw allow 16384:16484/udp comment 'fsplane:general'

# Update (UFW rewrites the comment of the rule it has):
ufw allow from 92.197.176.0/24 to any port 5060 proto udp comment 'fsplane:plusnet'
ufw allow from 92.197.177.0/24 to any port 5060 proto udp comment 'fsplane:plusnet'

# Delete (fsplane rules no longer generated):
ufw delete allow from 10.0.0.0/8 to any port 5060 proto udp
`
	if out != want {
		t.Errorf("diff:\n%s\nwant:\n%s", out, want)
	}

	for _, tc := range []struct{ content, want string }{
		{"", "not ufw status output: empty input"},
		{"Status: aktiv\n", `not ufw status output: first line "Status: aktiv"`},
	} {
		if err := os.WriteFile(from, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, stderr, rc := runFsplane(t, env, "firewall", "diff", "--from", from); rc == 0 || out != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("--from %q: rc %d, stdout %q, stderr %q", tc.content, rc, out, stderr)
		}
	}
	if _, stderr, rc := runFsplane(t, env, "firewall", "diff", "--from", filepath.Join(t.TempDir(), "missing")); rc == 0 || !strings.Contains(stderr, "--from: open") {
		t.Errorf("missing --from file: rc %d, %s", rc, stderr)
	}
}
