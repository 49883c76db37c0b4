package esltest

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// raw talks to the server byte for byte, as fs_cli would.
type raw struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *Server) *raw {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	return &raw{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.nc, s); err != nil {
		r.t.Fatal(err)
	}
}

// expect reads exactly len(want) bytes and compares them.
func (r *raw) expect(want string) {
	r.t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r.br, got); err != nil {
		r.t.Fatalf("reading %q: %v (got %q)", want, err, got)
	}
	if string(got) != want {
		r.t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

func (r *raw) expectEOF() {
	r.t.Helper()
	if b, err := r.br.ReadByte(); err == nil {
		r.t.Fatalf("more data after the end: %q", b)
	}
}

// The exact bytes mod_event_socket.c writes (listener_run, parse_command,
// api_exec, send_disconnect).
func TestWireFormat(t *testing.T) {
	s := Start(t, Options{Password: "pw", Profiles: []string{"internal"}})
	r := dialRaw(t, s)
	r.expect("Content-Type: auth/request\n\n")
	r.send("api status\n\n")
	r.expect("Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
	r.send("auth pw\n\n")
	r.expect("Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
	r.send("api sofia profile internal rescan\r\n\r\n")
	body := "Reload XML [Success]\n+OK scan complete\n"
	r.expect("Content-Type: api/response\nContent-Length: 39\n\n" + body)
	r.send("api sofia profile nope rescan\n\n")
	r.expect("Content-Type: api/response\nContent-Length: 22\n\nInvalid Profile [nope]")
	r.send("event plain CUSTOM sofia::gateway_state\n\n")
	r.expect("Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
	s.SetGatewayState("gw1", "REGED", "UP")
	r.expect("Content-Length: ")
	line, _ := r.br.ReadString('\n')
	if !strings.HasSuffix(line, "\n") {
		t.Fatal(line)
	}
	r.expect("Content-Type: text/event-plain\n\nEvent-Name: CUSTOM\n")
	rest, _ := r.br.ReadString('\n')
	for !strings.HasPrefix(rest, "Event-Subclass:") {
		rest, _ = r.br.ReadString('\n')
	}
	if rest != "Event-Subclass: sofia%3A%3Agateway_state\n" {
		t.Fatalf("%q", rest)
	}
	r.expect("Gateway: gw1\nState: REGED\nPing-Status: UP\n\n")
	r.send("exit\n\n")
	r.expect("Content-Type: command/reply\nReply-Text: +OK bye\n\n")
	msg := "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
	r.expect("Content-Type: text/disconnect-notice\nContent-Length: 67\n\n" + msg)
	r.expectEOF()
	if len(body) != 39 || len(msg) != 67 {
		t.Fatal("lengths in the expectations are wrong")
	}
	if got := s.Commands(); len(got) != 4 || got[0] != "api sofia profile internal rescan" {
		t.Fatalf("recorded %q", got)
	}
}

func TestWrongPasswordAndRejection(t *testing.T) {
	s := Start(t, Options{})
	r := dialRaw(t, s)
	r.expect("Content-Type: auth/request\n\n")
	r.send("auth nope\n\n")
	r.expect("Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
	r.expect("Content-Type: text/disconnect-notice\nContent-Length: 67\n\n")
	s.SetRejectACL(true)
	r2 := dialRaw(t, s)
	r2.expect("Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n")
}

// Two commands in one write are two commands: a line break is a command
// separator, which is why fsplane never writes one inside a value.
func TestLineBreaksSeparateCommands(t *testing.T) {
	s := Start(t, Options{})
	r := dialRaw(t, s)
	r.expect("Content-Type: auth/request\n\n")
	r.send("auth ClueCon\n\napi switchname\n\napi hostname\n\n")
	r.expect("Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
	r.expect("Content-Type: api/response\nContent-Length: 7\n\nesltest")
	r.expect("Content-Type: api/response\nContent-Length: 7\n\nesltest")
	if got := s.Commands(); len(got) != 2 {
		t.Fatalf("%q", got)
	}
}

func TestKillHangRestart(t *testing.T) {
	s := Start(t, Options{})
	r := dialRaw(t, s)
	r.expect("Content-Type: auth/request\n\n")
	s.Kill()
	if _, err := r.br.ReadByte(); err == nil {
		t.Fatal("connection survived Kill")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("still listening after Kill")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	s.Hang()
	r = dialRaw(t, s)
	_ = r.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := r.br.ReadByte(); err == nil {
		t.Fatal("a hung server greeted")
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	s.Unhang()
	r.expect("Content-Type: auth/request\n\n")
}

// `sofia xmlstatus profile P reg` is show_reg_callback_xml's text, byte
// for byte; flush_inbound_reg matches as sofia_reg_expire_call_id does.
func TestRegistrations(t *testing.T) {
	s := Start(t, Options{Profiles: []string{"internal"}, Switchname: "fs1"})
	exp := time.Now().Add(100 * time.Second)
	s.SetRegistrations("internal", []Registration{
		{CallID: "c1", SIPUser: "1001", SIPHost: "pbx.example.com", Contact: `"A" <sip:1001@h>`, Agent: "Ph\u00f6ne", Expires: exp,
			NetworkIP: "192.0.2.1", NetworkPort: "5060", AuthUser: "1001@x", AuthRealm: "pbx.example.com", MWIUser: "1001", MWIHost: "pbx.example.com"},
		{CallID: "c2", SIPUser: "1002", SIPHost: "pbx.example.com", Expires: exp, NetworkIP: "192.0.2.2", NetworkPort: "5060"},
		{CallID: "c3", SIPUser: "1003", SIPHost: "other.example.com", Expires: exp, NetworkIP: "192.0.2.3", NetworkPort: "5060"},
	})
	got := s.api("sofia xmlstatus profile internal reg")
	want := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<profile>\n  <registrations>\n    <registration>\n" +
		"        <call-id>c1</call-id>\n        <user>1001@pbx.example.com</user>\n" +
		"        <contact>&quot;A&quot; &lt;sip:1001@h&gt;</contact>\n        <agent>Ph\xf6ne</agent>\n" +
		"        <status>Registered(UDP)(unknown) exp(" + exp.Local().Format("2006-01-02 15:04:05") + ") expsecs("
	if !strings.HasPrefix(got, want) {
		t.Fatalf("got\n%q\nwant prefix\n%q", got, want)
	}
	for _, part := range []string{"        <host>fs1</host>\n", "        <sip-auth-user>1001%40x</sip-auth-user>\n",
		"        <mwi-account>1001@pbx.example.com</mwi-account>\n    </registration>\n", "        <mwi-account>@</mwi-account>\n",
		"  </registrations>\n</profile>\n"} {
		if !strings.Contains(got, part) {
			t.Errorf("no %q in\n%s", part, got)
		}
	}
	if r := s.api("sofia xmlstatus profile nope reg"); r != "Invalid Profile!\n" {
		t.Errorf("unknown profile: %q", r)
	}
	if r := s.api("sofia profile internal flush_inbound_reg 1002@pbx.example.com reboot"); r != "+OK rebooting all registrations matching specified call_id\n" {
		t.Errorf("flush: %q", r)
	}
	if r := s.api("sofia profile internal flush_inbound_reg other.example.com"); r != "+OK flushing all registrations matching specified call_id\n" {
		t.Errorf("flush: %q", r)
	}
	if f := s.Flushes(); len(f) != 2 || !f[0].Reboot || strings.Join(f[0].Removed, ",") != "c2" ||
		f[1].Reboot || strings.Join(f[1].Removed, ",") != "c3" {
		t.Errorf("flushes %+v", f)
	}
	if r := s.api("sofia profile internal flush_inbound_reg reboot"); r != "+OK rebooting all registrations\n" || len(s.Registrations("internal")) != 0 {
		t.Errorf("flush all: %q, left %+v", r, s.Registrations("internal"))
	}
}
