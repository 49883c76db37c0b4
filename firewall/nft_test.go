package firewall

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNFTRuleset checks the rulesets with the real nft in a namespace of
// their own: they pass `nft -c`, re-load cleanly, replace only their own
// table and leave an operator's tables alone.
func TestNFTRuleset(t *testing.T) {
	t.Parallel()
	nft, ip := needTool(t, "nft"), needTool(t, "ip")
	ns := newNetns(t, ip)
	nftIn := func(args ...string) (string, error) {
		out, err := exec.Command(ip, append([]string{"netns", "exec", ns, nft}, args...)...).CombinedOutput()
		return string(out), err
	}
	mustNFT := func(args ...string) string {
		t.Helper()
		out, err := nftIn(args...)
		if err != nil {
			t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	files := map[string]string{}
	for name, c := range goldenCases() {
		pol, err := NewPolicy(c.ranges, c.profiles)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = writeFile(t, name+".nft", pol.NFT())
		mustNFT("-c", "-f", files[name])
	}
	// Control: the check is real. Prefixes in a set without intervals are
	// refused.
	seed, _ := os.ReadFile(files["seed002"])
	bad := writeFile(t, "bad.nft", []byte(strings.Replace(string(seed), "\t\tflags interval\n", "", 1)))
	if out, err := nftIn("-c", "-f", bad); err == nil {
		t.Fatalf("nft -c accepted a set of prefixes without flags interval:\n%s", out)
	}

	operator := writeFile(t, "operator.nft", []byte(`table inet operator {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 22 accept
	}
}
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth0" masquerade
	}
}
`))
	mustNFT("-f", operator)
	before := mustNFT("list", "table", "inet", "operator") + mustNFT("list", "table", "ip", "nat")

	// First load, re-load, another policy, back.
	mustNFT("-f", files["seed002"])
	first := mustNFT("list", "table", "inet", NFTTable)
	mustNFT("-f", files["seed002"])
	if again := mustNFT("list", "table", "inet", NFTTable); again != first {
		t.Errorf("re-load changed the table:\n%s\nthen:\n%s", first, again)
	}
	for _, want := range []string{"92.197.176.0/23", "92.197.182.0/24", "212.227.124.0/24", "2001:8d8:104:100:212:227:124:128/125", "policy accept"} {
		if !strings.Contains(first, want) {
			t.Errorf("loaded table lacks %s:\n%s", want, first)
		}
	}
	mustNFT("-f", files["mixed"])
	if out, err := nftIn("list", "set", "inet", NFTTable, "tcp_5061_v4"); err == nil {
		t.Errorf("loading another policy kept the old set tcp_5061_v4:\n%s", out)
	}
	mustNFT("-f", files["seed002"])
	if again := mustNFT("list", "table", "inet", NFTTable); again != first {
		t.Errorf("loading seed002 after mixed differs from the first load:\n%s", again)
	}

	if after := mustNFT("list", "table", "inet", "operator") + mustNFT("list", "table", "ip", "nat"); after != before {
		t.Errorf("operator tables changed:\n%s\nnow:\n%s", before, after)
	}
	if tables := mustNFT("list", "tables"); strings.Count(tables, "table inet "+NFTTable+"\n") != 1 || strings.Count(tables, "\n") != 3 {
		t.Errorf("tables after loading:\n%s", tables)
	}
}

// TestNFTPackets sends real packets through the seed's ruleset between
// two namespaces: provider sources reach the SIP ports, others do not,
// and traffic to ports the ruleset does not own is untouched. The same
// probes without the ruleset all arrive, so the drops are its doing.
func TestNFTPackets(t *testing.T) {
	t.Parallel()
	nft, ip := needTool(t, "nft"), needTool(t, "ip")
	srv, cli := newNetns(t, ip), newNetns(t, ip)
	run(t, ip, "link", "add", "fsp-s", "netns", srv, "type", "veth", "peer", "name", "fsp-c", "netns", cli)
	for _, a := range []string{"92.197.176.1/24", "198.51.100.1/24", "212.227.124.1/24", "2001:8d8:104:100::1/64"} {
		run(t, ip, "-n", srv, "addr", "add", a, "dev", "fsp-s", "nodad")
	}
	for _, a := range []string{"92.197.176.10/24", "198.51.100.10/24", "212.227.124.10/24", "2001:8d8:104:100:212:227:124:129/64", "2001:8d8:104:100:212:227:124:200/64"} {
		run(t, ip, "-n", cli, "addr", "add", a, "dev", "fsp-c", "nodad")
	}
	run(t, ip, "-n", srv, "link", "set", "fsp-s", "up")
	run(t, ip, "-n", cli, "link", "set", "fsp-c", "up")

	type probe struct {
		proto, src, dst, port string
		allowed               bool
	}
	probes := []probe{
		{"udp", "92.197.176.10", "92.197.176.1", "5060", true},                           // plusnet
		{"udp", "212.227.124.10", "212.227.124.1", "5060", true},                         // 1&1 IPv4
		{"udp", "2001:8d8:104:100:212:227:124:129", "2001:8d8:104:100::1", "5060", true}, // 1&1 IPv6
		{"udp", "198.51.100.10", "198.51.100.1", "5060", false},                          // nobody's
		{"udp", "2001:8d8:104:100:212:227:124:200", "2001:8d8:104:100::1", "5060", false},
		{"tcp", "92.197.176.10", "92.197.176.1", "5061", true},    // plusnet TLS
		{"tcp", "212.227.124.10", "212.227.124.1", "5061", false}, // 1&1 has no TLS range
		{"udp", "198.51.100.10", "198.51.100.1", "10000", true},   // RTP: open to all
		{"tcp", "198.51.100.10", "198.51.100.1", "7443", true},    // WebRTC: open to all
		{"udp", "198.51.100.10", "198.51.100.1", "9999", true},    // not fsplane's: untouched
	}
	var args []string
	for _, p := range probes {
		args = append(args, strings.Join([]string{p.proto, p.src, p.dst, p.port}, " "))
	}
	// Sent after the probes from an address nothing drops: once it
	// arrived, the datagrams sent before it have been through the ruleset.
	const marker = "udp 9998 198.51.100.10"
	roundTrip := func() map[string]bool {
		r := startRecv(t, ip, srv, "udp/5060", "tcp/5061", "udp/10000", "tcp/7443", "udp/9999", "udp/9998")
		send(t, ip, cli, args...)
		send(t, ip, cli, "udp 198.51.100.10 198.51.100.1 9998")
		got := map[string]bool{}
		r.waitFor(t, marker, got)
		time.Sleep(200 * time.Millisecond) // stragglers of a drop we expect not to see
		r.stop(t, got)
		return got
	}

	without := roundTrip()
	for _, p := range probes {
		if line := p.proto + " " + p.port + " " + p.src; !without[line] {
			t.Fatalf("without the ruleset %q did not arrive (namespace setup broken): %v", line, without)
		}
	}

	pol, err := NewPolicy(seedRanges(), seedProfiles())
	if err != nil {
		t.Fatal(err)
	}
	run(t, ip, "netns", "exec", srv, nft, "-f", writeFile(t, "seed.nft", pol.NFT()))
	with := roundTrip()
	for _, p := range probes {
		if line := p.proto + " " + p.port + " " + p.src; with[line] != p.allowed {
			t.Errorf("%s: arrived %v, want %v %v", line, with[line], p.allowed, with)
		}
	}
}
