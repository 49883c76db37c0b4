package esl

import (
	"strings"
	"testing"
	"time"
)

// show_reg_callback_xml's output, as FreeSWITCH writes it: the Call-ID
// holds '<' and '&' (RFC 3261 allows them; FreeSWITCH writes the Call-ID
// raw), the agent is ISO-8859-1 (0xE9 is é), contact and agent are
// amp-encoded, sip-auth-user URL-encoded.
const regXMLLatin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<profile>\n  <registrations>\n" +
	"    <registration>\n" +
	"        <call-id>a<b&c@192.0.2.10</call-id>\n" +
	"        <user>1001@pbx.example.com</user>\n" +
	"        <contact>&quot;Reception&quot; &lt;sip:1001@192.0.2.10:5062;transport=udp;fs_nat=yes&gt;</contact>\n" +
	"        <agent>Linphone Desktop/5.2 (T\xe9l\xe9phone) &amp; co</agent>\n" +
	"        <status>Registered(UDP-NAT)(unknown) exp(2026-11-30 19:48:17) expsecs(3583)</status>\n" +
	"        <ping-status>Reachable</ping-status>\n" +
	"        <host>fs1</host>\n" +
	"        <network-ip>198.51.100.7</network-ip>\n" +
	"        <network-port>41234</network-port>\n" +
	"        <sip-auth-user>1001%40x</sip-auth-user>\n" +
	"        <sip-auth-realm>pbx.example.com</sip-auth-realm>\n" +
	"        <mwi-account>1001@pbx.example.com</mwi-account>\n" +
	"    </registration>\n" +
	"    <registration>\n" +
	"        <call-id>plain-id</call-id>\n" +
	"        <user>1002@pbx.example.com</user>\n" +
	"        <contact>sip:1002@[2001:db8::2]:5060</contact>\n" +
	"        <agent></agent>\n" +
	"        <status>Registered(TCP)(unknown) exp(2026-11-30 18:00:00) expsecs(-4)</status>\n" +
	"        <ping-status></ping-status>\n" +
	"        <host>fs1</host>\n" +
	"        <network-ip>2001:db8::2</network-ip>\n" +
	"        <network-port>5060</network-port>\n" +
	"        <sip-auth-user>1002</sip-auth-user>\n" +
	"        <sip-auth-realm>pbx.example.com</sip-auth-realm>\n" +
	"        <mwi-account>@</mwi-account>\n" +
	"    </registration>\n" +
	"  </registrations>\n</profile>\n"

func TestParseRegistrations(t *testing.T) {
	at := time.Date(2026, 11, 30, 18, 48, 17, 0, time.UTC)
	regs, err := parseRegistrations(regXMLLatin1, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 2 {
		t.Fatalf("%d registrations: %+v", len(regs), regs)
	}
	r := regs[0]
	want := Registration{CallID: "a<b&c@192.0.2.10", User: "1001@pbx.example.com",
		Contact: `"Reception" <sip:1001@192.0.2.10:5062;transport=udp;fs_nat=yes>`, Agent: "Linphone Desktop/5.2 (Téléphone) & co",
		Status: "Registered(UDP-NAT)", RPID: "unknown", ExpiresIn: 3583, ExpiresAt: at.Add(3583 * time.Second),
		PingStatus: "Reachable", Host: "fs1", NetworkIP: "198.51.100.7", NetworkPort: 41234, AuthUser: "1001@x",
		AuthRealm: "pbx.example.com", MWIAccount: "1001@pbx.example.com"}
	if r != want {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
	if r := regs[1]; r.ExpiresIn != -4 || r.Status != "Registered(TCP)" || r.MWIAccount != "" || r.NetworkPort != 5060 || r.Agent != "" {
		t.Errorf("second: %+v", r)
	}

	empty := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<profile>\n  <registrations>\n  </registrations>\n</profile>\n"
	if regs, err := parseRegistrations(empty, at); err != nil || len(regs) != 0 || regs == nil {
		t.Errorf("empty list: %v %v", regs, err)
	}
	for name, bad := range map[string]string{
		"not XML":     "Invalid Profile!\n",
		"cut short":   strings.Split(regXMLLatin1, "    </registration>")[0],
		"no expsecs":  strings.Replace(regXMLLatin1, " expsecs(3583)", "", 1),
		"bad port":    strings.Replace(regXMLLatin1, "41234", "4x", 1),
		"missing ip":  strings.Replace(regXMLLatin1, "        <network-ip>198.51.100.7</network-ip>\n", "", 1),
		"stray line":  strings.Replace(regXMLLatin1, "<host>fs1</host>", "<host>fs1", 1),
		"bad charset": strings.Replace(regXMLLatin1, "ISO-8859-1", "EBCDIC", 1),
	} {
		if _, err := parseRegistrations(bad, at); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFlushMatchesFreeSWITCHsWhere(t *testing.T) {
	r := Registration{CallID: "abc", User: "1001@pbx.example.com"}
	for arg, want := range map[string]bool{
		"abc": true, "1001@pbx.example.com": true, "pbx.example.com": true, "@pbx.example.com": true,
		"1002@pbx.example.com": false, "xyz@other": false, "ABC": false, "1001": false,
	} {
		if got := flushMatches(arg, r); got != want {
			t.Errorf("flushMatches(%q) = %v, want %v", arg, got, want)
		}
	}
}
