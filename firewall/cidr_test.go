package firewall

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestNormalizeCIDR(t *testing.T) {
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{in: "2001:8d8:104:100:212:227:124:129/125", want: "2001:8d8:104:100:212:227:124:128/125"},
		{in: "92.197.176.77/24", want: "92.197.176.0/24"},
		{in: " 92.197.176.0/24 ", want: "92.197.176.0/24"},
		{in: "212.227.124.9", want: "212.227.124.9/32"},
		{in: "2001:DB8::1", want: "2001:db8::1/128"},
		{in: "::ffff:92.197.176.1/120", want: "92.197.176.0/24"},
		{in: "::ffff:92.197.176.1", want: "92.197.176.1/32"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "92.197.176.0/33", wantErr: `"92.197.176.0/33" is not a CIDR`},
		{in: "92.197.176/24", wantErr: `"92.197.176/24" is not a CIDR`},
		{in: "sip.plusnet.de", wantErr: `"sip.plusnet.de" is not an address or CIDR`},
		{in: "", wantErr: `"" is not an address or CIDR`},
		{in: "fe80::1%eth0", wantErr: `"fe80::1%eth0" has a zone`},
		{in: "fe80::1%eth0/64", wantErr: `"fe80::1%eth0/64" is not a CIDR`},
		{in: "10.0.0.1/8'; rm -rf /", wantErr: `is not a CIDR`},
	} {
		got, err := NormalizeCIDR(tc.in)
		if tc.wantErr != "" {
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NormalizeCIDR(%q) = %v, %v; want error containing %s", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("NormalizeCIDR(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestParsePortSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    PortSpec
		wantErr string
	}{
		{in: "5060/udp", want: PortSpec{5060, 5060, "udp"}},
		{in: "5061/tcp", want: PortSpec{5061, 5061, "tcp"}},
		{in: "10000:10060/udp", want: PortSpec{10000, 10060, "udp"}},
		{in: "1:65535/tcp", want: PortSpec{1, 65535, "tcp"}},
		{in: "5060", wantErr: `"5060": no protocol`},
		{in: "5060/sctp", wantErr: `"5060/sctp": protocol must be udp or tcp`},
		{in: "5060/UDP", wantErr: `protocol must be udp or tcp`},
		{in: "0/udp", wantErr: `"0/udp": port out of range`},
		{in: "65536/udp", wantErr: `"65536/udp": port out of range`},
		{in: "10060:10000/udp", wantErr: `range ends before it starts`},
		{in: "-1/udp", wantErr: `not a port number`},
		{in: "+5060/udp", wantErr: `not a port number`},
		{in: "5060:/udp", wantErr: `not a port number`},
		{in: "5060-5070/udp", wantErr: `not a port number`},
		{in: "5060/udp comment 'x'", wantErr: `protocol must be udp or tcp`},
	} {
		got, err := ParsePortSpec(tc.in)
		if tc.wantErr != "" {
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePortSpec(%q) = %v, %v; want error containing %s", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePortSpec(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzNormalizeCIDR: whatever is accepted is masked, stable and made of
// characters that are safe on a shell line and in XML.
func FuzzNormalizeCIDR(f *testing.F) {
	for _, s := range []string{"92.197.176.0/24", "2001:8d8:104:100:212:227:124:129/125", "1.2.3.4", "::ffff:1.2.3.4/120", "::/0", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := NormalizeCIDR(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if p != p.Masked() || !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("NormalizeCIDR(%q) = %v: not masked/plain", s, p)
		}
		if strings.Trim(p.String(), "0123456789abcdef.:/") != "" {
			t.Fatalf("NormalizeCIDR(%q) = %q has unsafe characters", s, p)
		}
		again, err := NormalizeCIDR(p.String())
		if err != nil || again != p {
			t.Fatalf("not idempotent: %q -> %v -> %v, %v", s, p, again, err)
		}
		// The input's own address stays inside the normalised prefix.
		in := strings.TrimSpace(s)
		if a, _, ok := strings.Cut(in, "/"); ok {
			in = a
		}
		if a, err := netip.ParseAddr(in); err == nil && !p.Contains(a) && !p.Contains(a.Unmap()) {
			t.Fatalf("NormalizeCIDR(%q) = %v does not contain %v", s, p, a)
		}
	})
}

// FuzzParsePortSpec: accepted specs are ordered, in range, and round-trip
// through String.
func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"5060/udp", "5061/tcp", "10000:10060/udp", "0/udp", "65536/tcp", "5060:5059/udp", "5060"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParsePortSpec(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if ps.From < 1 || ps.From > ps.To || (ps.Proto != "udp" && ps.Proto != "tcp") {
			t.Fatalf("ParsePortSpec(%q) = %+v", s, ps)
		}
		back, err := ParsePortSpec(ps.String())
		if err != nil || back != ps {
			t.Fatalf("round trip %q -> %v -> %v, %v", s, ps, back, err)
		}
	})
}
