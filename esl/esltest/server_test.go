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
