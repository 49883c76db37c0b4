package esl

import (
	"testing"

	"github.com/fsplane/fsplane/models"
)

// xml_gateway_status output; the realm is ISO-8859-1 (0xFC is ü), as the
// header declares.
const gatewayXMLLatin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n  <gateway>\n" +
	"    <name>einsundeins</name>\n    <profile>internal</profile>\n    <scheme>Digest</scheme>\n" +
	"    <realm>m\xfcnchen.example</realm>\n    <username>4934556</username>\n    <password>yes</password>\n" +
	"    <from>&lt;sip:4934556@sip.1und1.de&gt;</from>\n    <contact>&lt;sip:gw+einsundeins@[2a01:4f8::2]:5060;transport=udp&gt;</contact>\n" +
	"    <state>FAIL_WAIT</state>\n    <status>DOWN</status>\n    <uptime-usec>0</uptime-usec>\n" +
	"    <retry>28s</retry>\n  </gateway>\n"

func TestParseGatewayISO88591(t *testing.T) {
	g, err := parseGateway(gatewayXMLLatin1)
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "einsundeins" || g.Profile != "internal" || g.State != "FAIL_WAIT" || g.Status != "DOWN" ||
		g.Retry != "28s" || g.Realm != "münchen.example" {
		t.Fatalf("%+v", g)
	}
	if _, err := parseGateway("Invalid Gateway!\n"); err == nil {
		t.Fatal("not XML, accepted")
	}
}

func TestRunningProfiles(t *testing.T) {
	reply := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<profiles>\n" +
		"<profile>\n<name>internal</name>\n<type>profile</type>\n<data>sip:mod_sofia@[::]:5060</data>\n<state>RUNNING (0)</state>\n</profile>\n" +
		"<gateway>\n<name>einsundeins</name>\n<type>gateway</type>\n<data>sip:sip.1und1.de</data>\n<state>FAILED</state>\n</gateway>\n (retry: 30s)\n" +
		"<alias>\n<name>default</name>\n<type>alias</type>\n<data>internal</data>\n<state>ALIASED</state>\n</alias>\n" +
		"<profile>\n<name>internal</name>\n<type>profile</type>\n<data>sips:mod_sofia@[::]:5061</data>\n<state>RUNNING (0) (TLS)</state>\n</profile>\n" +
		"<profile>\n<name>external-ipv4</name>\n<type>profile</type>\n<data>sip:mod_sofia@46.4.96.105:5060</data>\n<state>RUNNING (2)</state>\n</profile>\n" +
		"</profiles>\n"
	got, err := runningProfiles(reply)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["internal"] || !got["external-ipv4"] || got["default"] {
		t.Fatalf("%v", got)
	}
}

func TestHealthy(t *testing.T) {
	reg := models.Trunk{Enabled: true, Register: true}
	ip := models.Trunk{Enabled: true}
	pinged := models.Trunk{Enabled: true, PingSeconds: 30}
	off := models.Trunk{}
	cases := []struct {
		t           models.Trunk
		state, ping string
		want        bool
	}{
		{reg, "REGED", "UP", true},
		{reg, "NOREG", "UP", false},
		{reg, "FAIL_WAIT", "DOWN", false},
		{ip, "NOREG", "UP", true}, // IP-authenticated: NOREG is correct
		{ip, "NOREG", "DOWN", true},
		{pinged, "NOREG", "DOWN", false},
		{ip, GatewayAbsent, "", false},
		{off, GatewayAbsent, "", true},
		{off, "NOREG", "UP", false},
	}
	for _, c := range cases {
		if got := healthy(c.t, c.state, c.ping); got != c.want {
			t.Errorf("register=%v enabled=%v %s/%s: %v", c.t.Register, c.t.Enabled, c.state, c.ping, got)
		}
	}
}
