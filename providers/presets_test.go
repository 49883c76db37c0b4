package providers

import (
	"bufio"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/names"
)

// runbook is the operator's runbook the presets encode, read from testdata.
type runbook struct {
	// params[profile][name] = value, from the <param> lines.
	params map[string]map[string]string
	// ufw[provider] = "cidr port/proto" lines.
	ufw map[string][]string
	// trunk[provider][key] = value, from the "Trunk configuration" blocks.
	trunk map[string]map[string]string
}

func readRunbook(t *testing.T) runbook {
	t.Helper()
	f, err := os.Open("testdata/runbook.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rb := runbook{params: map[string]map[string]string{}, ufw: map[string][]string{}, trunk: map[string]map[string]string{}}
	paramRe := regexp.MustCompile(`<param name="([^"]+)" value="([^"]*)"/>`)
	ufwRe := regexp.MustCompile(`^ufw allow from (\S+) to any port (\d+) proto (udp|tcp)$`)
	kvRe := regexp.MustCompile(`^(Provider|Proxy|Outbound-Proxy|Register|Realm|Profile):\s+(\S+)$`)
	var profile, section, provider string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "external-ipv4", "internal":
			profile = line
		case "Plusnet (IPv4)":
			section = Plusnet
		case "1&1 (IPv6)":
			section = OneAndOne
		case "General":
			section = ""
		}
		if m := paramRe.FindStringSubmatch(line); m != nil {
			if rb.params[profile] == nil {
				rb.params[profile] = map[string]string{}
			}
			rb.params[profile][m[1]] = m[2]
		}
		if m := ufwRe.FindStringSubmatch(line); m != nil && section != "" {
			rb.ufw[section] = append(rb.ufw[section], m[1]+" "+m[2]+"/"+m[3])
		}
		if m := kvRe.FindStringSubmatch(line); m != nil {
			if m[1] == "Provider" {
				provider = map[string]string{"Plusnet": Plusnet, "1und1": OneAndOne}[m[2]]
				rb.trunk[provider] = map[string]string{}
				continue
			}
			if provider != "" {
				rb.trunk[provider][m[1]] = m[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rb.params) != 2 || len(rb.ufw) != 2 || len(rb.trunk) != 2 {
		t.Fatalf("runbook parse found %d profiles, %d ufw sections, %d trunks; want 2 each", len(rb.params), len(rb.ufw), len(rb.trunk))
	}
	return rb
}

func TestPresetsMatchRunbook(t *testing.T) {
	rb := readRunbook(t)
	for _, p := range Builtin() {
		t.Run(p.Name, func(t *testing.T) {
			want := rb.trunk[p.Name]
			got := map[string]string{
				"Proxy":          p.Proxy,
				"Outbound-Proxy": p.OutboundProxy,
				"Register":       map[bool]string{true: "true", false: "false"}[p.Register],
				"Profile":        p.Profile,
			}
			if p.Realm != "" {
				got["Realm"] = p.Realm
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, runbook says %q", k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("preset sets %v, runbook lists %v", got, want)
			}
			// Every ufw rule of the runbook, and no other, from the ranges.
			var rules []string
			for _, r := range p.Ranges {
				pfx, err := firewall.NormalizeCIDR(r.CIDR)
				if err != nil || pfx.String() != r.CIDR {
					t.Errorf("range %q is not a normalised CIDR (%v)", r.CIDR, err)
				}
				for _, port := range r.Ports {
					ps, err := firewall.ParsePortSpec(port)
					if err != nil {
						t.Errorf("range %s: %v", r.CIDR, err)
						continue
					}
					rules = append(rules, r.CIDR+" "+ps.String())
				}
			}
			slices.Sort(rules)
			wantRules := slices.Clone(rb.ufw[p.Name])
			slices.Sort(wantRules)
			if !slices.Equal(rules, wantRules) {
				t.Errorf("ranges give rules\n%v\nrunbook has\n%v", rules, wantRules)
			}
			if err := names.Gateway(p.Name); err != nil {
				t.Errorf("preset name: %v", err)
			}
		})
	}
}

func TestPresetValues(t *testing.T) {
	// The values the issue names, independent of the runbook parse.
	pn, err := ByName(Plusnet)
	if err != nil {
		t.Fatal(err)
	}
	if pn.Proxy != "sip.plusnet.de" || pn.OutboundProxy != "92.197.176.16" || pn.Register || pn.Profile != "external-ipv4" || pn.NeedsCredentials {
		t.Errorf("plusnet preset = %+v", pn)
	}
	one, err := ByName(OneAndOne)
	if err != nil {
		t.Fatal(err)
	}
	if one.Proxy != "sip.1und1.de" || one.Realm != "sip.1und1.de" || one.OutboundProxy != "[2001:8d8:104:100:212:227:124:129]" ||
		!one.Register || one.Profile != "internal" || !one.NeedsCredentials {
		t.Errorf("1und1 preset = %+v", one)
	}
	// REGISTER never goes to outbound-proxy: the registrar is pinned to
	// the same IPv6 address.
	if one.RegisterProxy != one.OutboundProxy {
		t.Errorf("1und1 register proxy %q, want %q", one.RegisterProxy, one.OutboundProxy)
	}
	var cidrs []string
	for _, r := range one.ProviderRanges() {
		if r.Provider != OneAndOne {
			t.Errorf("range provider %q", r.Provider)
		}
		cidrs = append(cidrs, r.CIDR)
	}
	if !slices.Equal(cidrs, []string{"2001:8d8:104:100:212:227:124:128/125", "212.227.124.0/24"}) {
		t.Errorf("1und1 ranges %v", cidrs)
	}
	tr := pn.Trunk()
	if tr.Provider != Plusnet || tr.OutboundProxy != "92.197.176.16" || !tr.Enabled || tr.Transport != "udp" {
		t.Errorf("plusnet trunk %+v", tr)
	}
	if _, err := ByName("Plusnet"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("ByName(Plusnet) = %v, want ErrUnknownPreset (names are slugs)", err)
	}
	// Builtin hands out copies.
	a := Builtin()
	a[0].Ranges[0].Ports[0] = "1/tcp"
	if Builtin()[0].Ranges[0].Ports[0] == "1/tcp" {
		t.Error("Builtin shares slices between calls")
	}
}

func TestDefaultProfilesMatchRunbook(t *testing.T) {
	rb := readRunbook(t)
	v4 := netip.MustParseAddr("46.4.96.105")
	v6 := netip.MustParseAddr("2a01:4f8:140:829d::2")
	for _, p := range DefaultProfiles(v4, v6) {
		got := map[string]string{
			"sip-ip":     p.BindIP,
			"sip-port":   strconv.Itoa(p.SIPPort),
			"ext-sip-ip": p.ExtSIPIP,
			"ext-rtp-ip": p.ExtRTPIP,
		}
		if p.TLS {
			got["tls-sip-port"] = strconv.Itoa(p.TLSPort)
		}
		if p.WSSBinding != "" {
			got["wss-binding"] = p.WSSBinding
		}
		want := rb.params[p.Name]
		if want == nil {
			t.Errorf("profile %s not in runbook", p.Name)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s %s = %q, runbook %q", p.Name, k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s sets %v, runbook %v", p.Name, got, want)
		}
		if p.InboundACL != firewall.GatewaysACL {
			t.Errorf("%s inbound ACL %q", p.Name, p.InboundACL)
		}
	}
}
