package firewall

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenCases are the inputs with golden outputs, one file per format.
func goldenCases() map[string]struct {
	ranges   []models.ProviderRange
	profiles []models.Profile
} {
	return map[string]struct {
		ranges   []models.ProviderRange
		profiles []models.Profile
	}{
		"seed002": {seedRanges(), seedProfiles()},
		"mixed": {[]models.ProviderRange{
			{Provider: "sipgate", CIDR: "217.10.68.0/24"},
			{Provider: "sipgate", CIDR: "217.10.69.0/24"},
			{Provider: "sipgate", CIDR: "2001:ab7::/32", Ports: models.StringList{"5060/udp", "5061/tcp"}},
			{Provider: "easybell", CIDR: "217.10.68.0/24", Ports: models.StringList{"5060/udp", "5062:5064/tcp"}},
			{Provider: "easybell", CIDR: "217.10.68.7", Ports: models.StringList{"5080/udp"}},
			{Provider: "easybell", CIDR: "2001:ab7:0:1::/64", Ports: models.StringList{"5061/tcp"}},
		}, []models.Profile{
			{Name: "a", WSSBinding: "0.0.0.0:7443", RTPPortMin: 16384, RTPPortMax: 16484},
			{Name: "b", WSSBinding: "[::]:7443", RTPPortMin: 16384, RTPPortMax: 16484},
		}},
	}
}

var goldenExt = map[string]string{FormatUFW: ".ufw", FormatNFT: ".nft", FormatACL: ".acl.xml", FormatJSON: ".json"}

func TestGolden(t *testing.T) {
	for name, c := range goldenCases() {
		for format, ext := range goldenExt {
			t.Run(name+ext, func(t *testing.T) {
				got, ct, err := Export(format, c.ranges, c.profiles)
				if err != nil {
					t.Fatal(err)
				}
				wantCT := map[string]string{FormatUFW: ContentTypeText, FormatNFT: ContentTypeText, FormatACL: ContentTypeXML, FormatJSON: ContentTypeJSON}[format]
				if ct != wantCT {
					t.Errorf("content type %q, want %q", ct, wantCT)
				}
				path := filepath.Join("testdata", "golden", name+ext)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from golden (run with -update after checking):\n%s", path, got)
				}
			})
		}
	}
}

// TestSeedUFWRules checks the generated UFW rules against the ones the
// operator wrote by hand in the seed's runbook: the same rules, no more,
// each with fsplane's comment naming its provider.
func TestSeedUFWRules(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "seed_002_runbook.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hand []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "ufw allow ") {
			hand = append(hand, l)
		}
	}
	if len(hand) != 11 {
		t.Fatalf("runbook has %d ufw lines, the test expects the seed's 11", len(hand))
	}

	pol, err := NewPolicy(seedRanges(), seedProfiles())
	if err != nil {
		t.Fatal(err)
	}
	var gen []string
	for _, r := range pol.Rules {
		line, comment, ok := strings.Cut(r.UFW(), " comment ")
		if !ok {
			t.Fatalf("rule without comment: %s", r.UFW())
		}
		wantComment := "'fsplane:general'"
		if r.Source.IsValid() {
			wantComment = map[bool]string{true: "'fsplane:plusnet'", false: "'fsplane:1und1'"}[strings.HasPrefix(r.Source.String(), "92.197.")]
		}
		if comment != wantComment {
			t.Errorf("%s: comment %s, want %s", line, comment, wantComment)
		}
		gen = append(gen, line)
	}
	slices.Sort(hand)
	slices.Sort(gen)
	if !slices.Equal(hand, gen) {
		t.Errorf("generated rules:\n%s\nrunbook:\n%s", strings.Join(gen, "\n"), strings.Join(hand, "\n"))
	}

	// The UFW export is these lines, runnable as a shell script.
	var script []string
	for _, l := range strings.Split(string(pol.UFW()), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			script = append(script, l)
		}
	}
	if !slices.Equal(script, ufwLines(pol)) {
		t.Errorf("export lines %q, want the rules %q", script, ufwLines(pol))
	}
}

func TestJSONRoundTrip(t *testing.T) {
	body, _, err := Export(FormatJSON, seedRanges(), seedProfiles())
	if err != nil {
		t.Fatal(err)
	}
	var doc JSONPolicy
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	pol, _ := NewPolicy(seedRanges(), seedProfiles())
	if len(doc.Rules) != len(pol.Rules) {
		t.Fatalf("%d JSON rules, %d rules", len(doc.Rules), len(pol.Rules))
	}
	for i, jr := range doc.Rules {
		r := pol.Rules[i]
		src := ""
		if r.Source.IsValid() {
			src = r.Source.String()
		}
		if jr.UFW != r.UFW() || jr.Source != src || jr.Family != r.Family() || jr.Ports != r.Port.String() || jr.Comment != r.Comment() {
			t.Errorf("rule %d: %+v does not match %s", i, jr, r.UFW())
		}
	}
}

func TestExportUnknownFormat(t *testing.T) {
	for _, f := range []string{"", "iptables", "UFW"} {
		if _, _, err := Export(f, seedRanges(), nil); err == nil || !strings.Contains(err.Error(), `"`+f+`"`) {
			t.Errorf("Export(%q) error = %v, want ErrUnknownFormat naming it", f, err)
		}
	}
}

// TestACLConfigSkipsBadRows: the serving path leaves an invalid row out
// (the list is default deny) instead of failing.
func TestACLConfigSkipsBadRows(t *testing.T) {
	ranges := append(seedRanges(), models.ProviderRange{Provider: "bad", CIDR: "not-a-cidr"}, models.ProviderRange{Provider: "x y", CIDR: "10.0.0.0/8"})
	el := ACLConfig(ranges)
	list := el.FindElement("network-lists/list")
	if list == nil || list.SelectAttrValue("name", "") != GatewaysACL || list.SelectAttrValue("default", "") != "deny" {
		t.Fatalf("no default-deny %s list", GatewaysACL)
	}
	var cidrs []string
	for _, n := range list.SelectElements("node") {
		if n.SelectAttrValue("type", "") != "allow" {
			t.Errorf("node type %q", n.SelectAttrValue("type", ""))
		}
		cidrs = append(cidrs, n.SelectAttrValue("cidr", ""))
	}
	want := []string{"92.197.176.0/24", "92.197.177.0/24", "92.197.182.0/24", "212.227.124.0/24", "2001:8d8:104:100:212:227:124:128/125"}
	if !slices.Equal(cidrs, want) {
		t.Errorf("nodes %v, want %v", cidrs, want)
	}
	if _, err := ACL(ranges); err == nil || !strings.Contains(err.Error(), `"not-a-cidr"`) || !strings.Contains(err.Error(), `"x y"`) {
		t.Errorf("ACL error = %v, want both bad rows named", err)
	}
}
