package names

import (
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		in        string
		port      bool
		want, fam string
		wantErr   string
	}{
		{in: "sip.plusnet.de", port: true, want: "sip.plusnet.de"},
		{in: "SIP.1und1.DE", want: "sip.1und1.de"},
		{in: "sip.1und1.de.", want: "sip.1und1.de."},
		{in: "localhost", want: "localhost"},
		{in: "sip.plusnet.de:5060", port: true, want: "sip.plusnet.de:5060"},
		{in: "92.197.176.16", want: "92.197.176.16", fam: "ipv4"},
		{in: "92.197.176.16:5080", port: true, want: "92.197.176.16:5080", fam: "ipv4"},
		{in: "2001:8d8:104:100:212:227:124:129", want: "[2001:8d8:104:100:212:227:124:129]", fam: "ipv6"},
		{in: "[2001:8d8:104:100:212:227:124:129]", want: "[2001:8d8:104:100:212:227:124:129]", fam: "ipv6"},
		{in: "[2001:8D8::1]:5060", port: true, want: "[2001:8d8::1]:5060", fam: "ipv6"},
		{in: "2001:db8::1:5060", port: true, want: "[2001:db8::1:5060]", fam: "ipv6"}, // an address, not host:port
		{in: "", wantErr: "must not be empty"},
		{in: "sip.plusnet.de:5060", wantErr: "must not carry a port"},
		{in: "[2001:db8::1]:5060", wantErr: "must not carry a port"},
		{in: "sip.plusnet.de:0", port: true, wantErr: "out of range"},
		{in: "sip.plusnet.de:x", port: true, wantErr: "not a number"},
		{in: "sip.plusnet.de:", port: true, wantErr: "not a number"},
		{in: "[2001:db8::1]5060", port: true, wantErr: "unexpected"},
		{in: "[2001:db8::1", wantErr: "missing ]"},
		{in: "[92.197.176.16]", wantErr: "only IPv6"},
		{in: "2001:db8:::1", wantErr: "not a valid IPv6"},
		{in: "2001:db8::g", wantErr: "not a valid IPv6"},
		{in: "fe80::1%eth0", wantErr: "zone"},
		{in: "::ffff:1.2.3.4", wantErr: "IPv4-mapped"},
		{in: "0.0.0.0", wantErr: "unspecified"},
		{in: "::", wantErr: "unspecified"},
		{in: "224.0.0.1", wantErr: "multicast"},
		{in: "1.2.3", wantErr: "not a valid IPv4 address or host name"},
		{in: "256.1.1.1", wantErr: "not a valid IPv4 address or host name"},
		{in: "sip..de", wantErr: "empty or over-long label"},
		{in: "sip_x.de", wantErr: "contains '_'"},
		{in: strings.Repeat("a", 64) + ".de", wantErr: "over-long label"},
		{in: "sip.plusnet.de\r\n", wantErr: "whitespace"},
		{in: "sip plusnet", wantErr: "whitespace"},
		{in: "sip<x>", wantErr: `'<'`},
		{in: "sip&x", wantErr: `'&'`},
		{in: "sip'x", wantErr: `'\''`},
		{in: "sip$x", wantErr: `'$'`},
		{in: "sïp.de", wantErr: "contains"},
		{in: "\xff", wantErr: "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			h, err := ParseHost(tc.in, tc.port)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseHost(%q) = %v, %v; want error %q", tc.in, h, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.String() != tc.want || h.Family() != tc.fam {
				t.Errorf("got %q (%q), want %q (%q)", h.String(), h.Family(), tc.want, tc.fam)
			}
			// Normalised output parses to itself.
			again, err := ParseHost(h.String(), true)
			if err != nil || again.String() != h.String() {
				t.Errorf("round trip %q → %q, %v", h.String(), again.String(), err)
			}
		})
	}
}

func TestCheckE164(t *testing.T) {
	for in, wantErr := range map[string]string{
		"+493455667290":     "",
		"+4934556643378":    "",
		"+12":               "",
		"+1":                "not an E.164",
		"+0123":             "not an E.164",
		"493455667290":      "not an E.164",
		"+49 345 566 7290":  "e.g. +493455667290",
		"+49-345-5667290":   "e.g. +493455667290",
		"+4934556672901234": "not an E.164",
		"+49345\n":          "not an E.164",
	} {
		err := E164(in)
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("E164(%q) = %v, want %q", in, err, wantErr)
		}
	}
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"sip.plusnet.de:5060", "[2001:8d8::1]:5060", "2001:8d8:104:100:212:227:124:129", "92.197.176.16", "a<b", "[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHost(s, true)
		if err != nil {
			return
		}
		out := h.String()
		if strings.ContainsAny(out, forbidden+"\r\n") {
			t.Fatalf("%q normalised to %q with a forbidden character", s, out)
		}
		if h.Family() == "ipv6" && !strings.HasPrefix(out, "[") {
			t.Fatalf("IPv6 %q not bracketed: %q", s, out)
		}
		again, err := ParseHost(out, true)
		if err != nil || again.String() != out {
			t.Fatalf("%q → %q does not round-trip: %v", s, out, err)
		}
	})
}
