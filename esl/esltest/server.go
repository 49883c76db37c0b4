// Package esltest is an in-process FreeSWITCH event socket for tests: a
// real TCP listener speaking mod_event_socket's wire format (auth/request,
// auth, command/reply, api/response with Content-Length, text/event-plain,
// text/disconnect-notice, text/rude-rejection) in front of a small model of
// mod_sofia (loaded or not, profiles, gateways with their call counters,
// killgw and its sofia::gateway_delete, the 10-second restart guard,
// registrations listed by `sofia xmlstatus profile P reg` and removed by
// flush_inbound_reg). It records every command (and each flush), can emit
// events (sofia::gateway_state with a REGISTER reply's Status and Phrase),
// and can be killed, hung and restarted on the same port.
//
// Replies follow FreeSWITCH 1.10's source (mod_event_socket.c, mod_sofia.c
// cmd_profile and cmd_xml_status, mod_commands.c).
package esltest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Gateway is a sofia gateway the fake knows.
type Gateway struct {
	Name     string
	Profile  string
	State    string // default NOREG, or REGED when Register
	Ping     string // UP or DOWN; default UP
	Register bool
	Realm    string // written to xmlstatus as ISO-8859-1
	// Calls are the gateway's call counters (xml_gateway_status
	// calls-in, calls-out, failed-calls-in, failed-calls-out).
	CallsIn, CallsOut, FailedCallsIn, FailedCallsOut uint32
}

// Registration is one row of sofia's sip_registrations, as `sofia
// xmlstatus profile P reg` lists it (mod_sofia.c show_reg_callback_xml).
type Registration struct {
	CallID           string
	SIPUser, SIPHost string // listed as <user>SIPUser@SIPHost</user>
	Contact          string
	Agent            string
	Status           string // default "Registered(UDP)"
	RPID             string // default "unknown"
	Expires          time.Time
	PingStatus       string // default "Reachable"
	Hostname         string // the FreeSWITCH host; default the switchname
	NetworkIP        string
	NetworkPort      string
	AuthUser         string
	AuthRealm        string
	MWIUser, MWIHost string
}

// Flush is one `sofia profile P flush_inbound_reg ARG [reboot]` the server
// received, with the Call-IDs of the rows it removed.
type Flush struct {
	Profile string
	Arg     string
	Reboot  bool
	Removed []string
}

// Options configure a Server.
type Options struct {
	// Addr to listen on; default 127.0.0.1:0.
	Addr string
	// Password for auth; default ClueCon.
	Password string
	// Switchname answers `api switchname`; default esltest.
	Switchname string
	// SofiaMissing starts with mod_sofia not loaded: `sofia …` answers
	// "-ERR sofia Command not found!" until `load mod_sofia`.
	SofiaMissing bool
	// Profiles run from the start.
	Profiles []string
	// OnLoad are the profiles `load mod_sofia` starts (the backend's
	// sofia.conf).
	OnLoad []string
	// Gateways are loaded from the start; a rescan of their profile brings
	// a killed one back (they are what the backend serves).
	Gateways []Gateway
	// DeleteDelay is how long after killgw the gateway is deleted and
	// sofia::gateway_delete emitted; negative: never (call DeleteGateway).
	DeleteDelay time.Duration
	// RestartGuard is how long after its start a profile refuses a
	// restart; default 10s, as FreeSWITCH.
	RestartGuard time.Duration
}

// Entry is one line of the transcript: a command received or an event sent.
type Entry struct {
	At   time.Time
	Conn int
	Kind string // "cmd", "event", or "auth" (a successful authentication)
	Text string // the command line, or "<subclass> <Gateway>", or "auth"
}

type profile struct{ started time.Time }

// Server is the fake event socket. Its methods are safe for concurrent use.
type Server struct {
	opt  Options
	addr string

	mu         sync.Mutex
	ln         net.Listener
	up         time.Time // when this "FreeSWITCH" started: New, and each Restart
	conns      map[*sconn]struct{}
	nextConn   int
	closed     bool
	done       chan struct{}
	hung       bool
	unhang     chan struct{}
	reject     bool
	loaded     bool
	profiles   map[string]*profile
	gateways   map[string]*Gateway // loaded
	defined    map[string]Gateway  // what a rescan loads
	replies    map[string]string
	regs       map[string][]Registration // profile → rows
	flushes    []Flush
	transcript []Entry
	changed    chan struct{}
	onCommand  func(line string, at time.Time)
	onAuth     func(at time.Time)
	seq        int
	timers     []*time.Timer
	wg         sync.WaitGroup
}

type sconn struct {
	id   int
	nc   net.Conn
	wmu  sync.Mutex
	dead chan struct{}
	once sync.Once

	mu       sync.Mutex
	authed   bool
	allCust  bool
	custom   map[string]bool
	eventsOn bool
}

// kill resets the connection: an abrupt death, RST and no FIN.
func (c *sconn) kill() {
	c.once.Do(func() {
		close(c.dead)
		if tc, ok := c.nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.nc.Close()
	})
}

// close ends the connection the way FreeSWITCH does after a disconnect
// notice: what was written is delivered, then FIN.
func (c *sconn) close() {
	c.once.Do(func() {
		close(c.dead)
		_ = c.nc.Close()
	})
}

// New starts a Server.
func New(opt Options) (*Server, error) {
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	if opt.Password == "" {
		opt.Password = "ClueCon"
	}
	if opt.Switchname == "" {
		opt.Switchname = "esltest"
	}
	if opt.RestartGuard == 0 {
		opt.RestartGuard = 10 * time.Second
	}
	s := &Server{
		opt: opt, conns: map[*sconn]struct{}{}, done: make(chan struct{}), loaded: !opt.SofiaMissing,
		profiles: map[string]*profile{}, gateways: map[string]*Gateway{}, defined: map[string]Gateway{},
		replies: map[string]string{}, changed: make(chan struct{}), regs: map[string][]Registration{},
	}
	now := time.Now()
	s.up = now
	for _, p := range opt.Profiles {
		s.profiles[p] = &profile{started: now}
	}
	for _, g := range opt.Gateways {
		g := normalise(g)
		s.defined[g.Name] = g
		if s.loaded && s.profiles[g.Profile] != nil {
			s.gateways[g.Name] = &g
		}
	}
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("esltest: listen: %w", err)
	}
	s.ln, s.addr = ln, ln.Addr().String()
	s.wg.Add(1)
	go s.serve(ln)
	return s, nil
}

// Start is New for tests: it fails tb on error and closes at cleanup.
func Start(tb testing.TB, opt Options) *Server {
	tb.Helper()
	s, err := New(opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

func normalise(g Gateway) Gateway {
	if g.State == "" {
		g.State = "NOREG"
		if g.Register {
			g.State = "REGED"
		}
	}
	if g.Ping == "" {
		g.Ping = "UP"
	}
	return g
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// Close stops the server for good and waits for its goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.stopLocked()
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Kill is FreeSWITCH dying: the listener closes and every connection is
// reset. State (profiles, gateways) is kept for Restart.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.ln != nil {
		_ = s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.kill()
	}
}

// Restart listens again on the same address: a FreeSWITCH that started
// anew (its uptime starts again). When it returns, connections are
// accepted.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("esltest: restart after Close")
	}
	if s.ln != nil {
		return nil
	}
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("esltest: listen again on %s: %w", s.addr, err)
	}
	s.ln, s.up = ln, time.Now()
	s.wg.Add(1)
	go s.serve(ln)
	return nil
}

// Hang makes the server stop answering: new connections get no greeting,
// open ones no replies, until Unhang. Connections stay open.
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hung {
		s.hung, s.unhang = true, make(chan struct{})
	}
}

// Unhang lets the server answer again.
func (s *Server) Unhang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hung {
		s.hung = false
		close(s.unhang)
	}
}

// SetRejectACL makes new connections get text/rude-rejection, as when
// event_socket.conf's apply-inbound-acl does not allow the client.
func (s *Server) SetRejectACL(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = on
}

// SetSofiaLoaded loads or unloads mod_sofia (unloading stops every profile).
func (s *Server) SetSofiaLoaded(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaded = on
	if !on {
		clear(s.profiles)
		clear(s.gateways)
	}
}

// StopProfile removes a running profile and its gateways.
func (s *Server) StopProfile(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.profiles, name)
	for n, g := range s.gateways {
		if g.Profile == name {
			delete(s.gateways, n)
		}
	}
}

// SetProfileStarted sets when a running profile started (for the restart
// guard).
func (s *Server) SetProfileStarted(name string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.profiles[name]; p != nil {
		p.started = at
	}
}

// Profiles returns the running profiles, sorted.
func (s *Server) Profiles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.profiles))
	for p := range s.profiles {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// SofiaLoaded reports whether mod_sofia is loaded.
func (s *Server) SofiaLoaded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded
}

// DefineGateway makes g what the backend serves: a rescan of its profile
// loads it when it is not loaded.
func (s *Server) DefineGateway(g Gateway) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defined[g.Name] = normalise(g)
}

// UndefineGateway stops the backend serving the gateway: a rescan no
// longer loads it (a loaded one stays until killgw).
func (s *Server) UndefineGateway(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.defined, name)
}

// LoadGateway loads g now (as if a rescan had fetched it).
func (s *Server) LoadGateway(g Gateway) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g = normalise(g)
	s.defined[g.Name] = g
	s.gateways[g.Name] = &g
}

// Gateway returns a loaded gateway.
func (s *Server) Gateway(name string) (Gateway, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gateways[name]; ok {
		return *g, true
	}
	return Gateway{}, false
}

// DeleteGateway removes a loaded gateway and emits sofia::gateway_delete,
// as FreeSWITCH does once a killed gateway has un-registered.
func (s *Server) DeleteGateway(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(name)
}

func (s *Server) deleteLocked(name string) {
	g, ok := s.gateways[name]
	if !ok {
		return
	}
	delete(s.gateways, name)
	s.emitLocked("sofia::gateway_delete", [][2]string{{"profile-name", g.Profile}, {"Gateway", name}})
}

// SetGatewayState changes a loaded gateway's state and emits
// sofia::gateway_state.
func (s *Server) SetGatewayState(name, state, ping string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gateways[name]; ok {
		g.State, g.Ping = state, ping
	}
	s.emitLocked("sofia::gateway_state", [][2]string{{"Gateway", name}, {"State", state}, {"Ping-Status", ping}})
}

// SetGatewayStateReply changes a loaded gateway's state and emits
// sofia::gateway_state with the REGISTER reply that caused it, as
// sofia_reg.c sofia_reg_handle_sofia_r_register does (headers Status and
// Phrase; FreeSWITCH leaves out a zero Status and an empty Phrase).
func (s *Server) SetGatewayStateReply(name, state, ping string, status int, phrase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gateways[name]; ok {
		g.State, g.Ping = state, ping
	}
	h := [][2]string{{"Gateway", name}, {"State", state}, {"Ping-Status", ping}}
	if phrase != "" {
		h = append(h, [2]string{"Phrase", phrase})
	}
	if status != 0 {
		h = append(h, [2]string{"Status", strconv.Itoa(status)})
	}
	s.emitLocked("sofia::gateway_state", h)
}

// SetGatewayCalls sets a loaded gateway's call counters.
func (s *Server) SetGatewayCalls(name string, in, out, failedIn, failedOut uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gateways[name]; ok {
		g.CallsIn, g.CallsOut, g.FailedCallsIn, g.FailedCallsOut = in, out, failedIn, failedOut
	}
}

// SetRegistrations replaces the registrations of a profile.
func (s *Server) SetRegistrations(profile string, regs []Registration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regs[profile] = slices.Clone(regs)
}

// Registrations returns the registrations of a profile.
func (s *Server) Registrations(profile string) []Registration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.regs[profile])
}

// Flushes returns every flush_inbound_reg received, in order.
func (s *Server) Flushes() []Flush {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.flushes)
}

// SetReply makes `api <line>` answer reply, whatever the model says.
func (s *Server) SetReply(line, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[line] = reply
}

// OnCommand calls f (on the connection's goroutine) for every command
// received after authentication.
func (s *Server) OnCommand(f func(line string, at time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCommand = f
}

// OnAuth calls f (on the connection's goroutine) when a client has
// authenticated: the moment a client's `auth` was accepted.
func (s *Server) OnAuth(f func(at time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAuth = f
}

// Auths returns how many clients authenticated since the transcript was
// last reset.
func (s *Server) Auths() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.transcript {
		if e.Kind == "auth" {
			n++
		}
	}
	return n
}

// Emit sends a CUSTOM event to every connection subscribed to subclass.
func (s *Server) Emit(subclass string, headers [][2]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitLocked(subclass, headers)
}

// Commands returns every command line received after authentication, in
// order, over all connections ("api sofia profile internal rescan", "event
// plain CUSTOM …").
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.transcript {
		if e.Kind == "cmd" {
			out = append(out, e.Text)
		}
	}
	return out
}

// Count returns how many times line was received.
func (s *Server) Count(line string) int {
	n := 0
	for _, c := range s.Commands() {
		if c == line {
			n++
		}
	}
	return n
}

// Transcript returns commands and events in the order they happened.
func (s *Server) Transcript() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.transcript)
}

// ResetTranscript forgets what was recorded so far.
func (s *Server) ResetTranscript() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transcript = nil
	s.notifyLocked()
}

// Conns returns how many connections are open.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Wait blocks until cond holds (checked after every command and event) or
// ctx ends.
func (s *Server) Wait(ctx context.Context, cond func(*Server) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // conditions on Conns and state change silently
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) record(c *sconn, kind, text string) {
	s.mu.Lock()
	at := time.Now()
	s.transcript = append(s.transcript, Entry{At: at, Conn: c.id, Kind: kind, Text: text})
	f, g := s.onCommand, s.onAuth
	s.notifyLocked()
	s.mu.Unlock()
	if f != nil && kind == "cmd" {
		f(text, at)
	}
	if g != nil && kind == "auth" {
		g(at)
	}
}

func (s *Server) serve(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ln != ln {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.nextConn++
		c := &sconn{id: s.nextConn, nc: nc, dead: make(chan struct{}), custom: map[string]bool{}}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

func (s *Server) handle(c *sconn) {
	defer s.wg.Done()
	defer func() {
		c.close()
		s.mu.Lock()
		delete(s.conns, c)
		s.notifyLocked()
		s.mu.Unlock()
	}()
	s.mu.Lock()
	reject := s.reject
	s.mu.Unlock()
	if reject {
		msg := "Access Denied, go away.\n"
		c.write(fmt.Sprintf("Content-Type: text/rude-rejection\nContent-Length: %d\n\n%s", len(msg), msg))
		c.disconnect()
		return
	}
	if !s.waitUnhung(c) {
		return
	}
	c.write("Content-Type: auth/request\n\n")
	br := bufio.NewReader(c.nc)
	for {
		line, err := readCommand(br)
		if err != nil {
			return
		}
		if !s.waitUnhung(c) {
			return
		}
		c.mu.Lock()
		authed := c.authed
		c.mu.Unlock()
		if !authed {
			if pw, ok := strings.CutPrefix(line, "auth "); ok {
				if pw != s.opt.Password {
					c.reply("-ERR invalid")
					c.disconnect()
					return
				}
				c.mu.Lock()
				c.authed = true
				c.mu.Unlock()
				s.record(c, "auth", "auth") // never the password
				c.reply("+OK accepted")
				continue
			}
			c.reply("-ERR command not found")
			continue
		}
		s.record(c, "cmd", line)
		switch {
		case line == "exit":
			c.reply("+OK bye")
			c.disconnect()
			return
		case strings.HasPrefix(line, "event "):
			c.reply(c.subscribe(line))
		case strings.HasPrefix(line, "api "):
			body := s.api(strings.TrimPrefix(line, "api "))
			if body == "" {
				body = "-ERR no reply\n"
			}
			c.write(fmt.Sprintf("Content-Type: api/response\nContent-Length: %d\n\n%s", len(body), body))
		default:
			c.reply("-ERR command not found")
		}
	}
}

// waitUnhung blocks while the server hangs; false when the connection or
// the server went away meanwhile.
func (s *Server) waitUnhung(c *sconn) bool {
	for {
		s.mu.Lock()
		hung, ch := s.hung, s.unhang
		s.mu.Unlock()
		if !hung {
			return true
		}
		select {
		case <-ch:
		case <-c.dead:
			return false
		case <-s.done:
			return false
		}
	}
}

// readCommand reads one command as mod_event_socket does: up to two
// consecutive line feeds (carriage returns ignored); the first line is the
// command, further lines are headers (ignored here). Leading blank lines
// are skipped.
func readCommand(br *bufio.Reader) (string, error) {
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && l != "" {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			if len(lines) == 0 {
				continue
			}
			return lines[0], nil
		}
		lines = append(lines, l)
	}
}

func (c *sconn) write(s string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c.nc, s)
}

func (c *sconn) reply(text string) {
	c.write("Content-Type: command/reply\nReply-Text: " + text + "\n\n")
}

func (c *sconn) disconnect() {
	msg := "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
	c.write(fmt.Sprintf("Content-Type: text/disconnect-notice\nContent-Length: %d\n\n%s", len(msg), msg))
}

// subscribe handles "event plain CUSTOM a::b c::d" and "event plain ALL".
func (c *sconn) subscribe(line string) string {
	f := strings.Fields(line)[1:]
	if len(f) > 0 && (f[0] == "plain" || f[0] == "json" || f[0] == "xml") {
		if f[0] != "plain" {
			return "-ERR esltest speaks plain events only"
		}
		f = f[1:]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	custom, keys := false, 0
	for _, w := range f {
		switch {
		case custom:
			c.custom[w] = true
		case w == "CUSTOM":
			custom = true
			keys++
		case w == "ALL" || w == "all":
			c.allCust = true
			keys++
		}
	}
	if keys == 0 {
		return "-ERR no keywords supplied"
	}
	c.eventsOn = true
	return "+OK event listener enabled plain"
}

func (c *sconn) wants(subclass string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authed && c.eventsOn && (c.allCust || c.custom[subclass])
}

// unsafe is what switch_url_encode escapes.
const unsafe = "\r\n \"#%&+:;<=>?@[\\]^`{|}"

func encode(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch < 0x20 || ch >= 0x7f || strings.IndexByte(unsafe, ch) >= 0 {
			fmt.Fprintf(&b, "%%%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

func (s *Server) emitLocked(subclass string, headers [][2]string) {
	s.seq++
	now := time.Now()
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + ": " + encode(v) + "\n") }
	add("Event-Name", "CUSTOM")
	add("Core-UUID", "36c6db59-f5e7-4fa8-b892-3075814685ab")
	add("FreeSWITCH-Hostname", s.opt.Switchname)
	add("FreeSWITCH-Switchname", s.opt.Switchname)
	add("FreeSWITCH-IPv4", "127.0.0.1")
	add("FreeSWITCH-IPv6", "::1")
	add("Event-Date-Local", now.Format("2006-01-02 15:04:05"))
	add("Event-Date-GMT", now.UTC().Format(time.RFC1123))
	add("Event-Date-Timestamp", strconv.FormatInt(now.UnixMicro(), 10))
	add("Event-Calling-File", "sofia_reg.c")
	add("Event-Calling-Function", "esltest")
	add("Event-Calling-Line-Number", "1")
	add("Event-Sequence", strconv.Itoa(s.seq))
	add("Event-Subclass", subclass)
	gw := ""
	for _, h := range headers {
		add(h[0], h[1])
		if h[0] == "Gateway" {
			gw = h[1]
		}
	}
	b.WriteString("\n")
	body := b.String()
	frame := fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(body), body)
	for c := range s.conns {
		if c.wants(subclass) {
			c.write(frame) // in order, one whole frame at a time
		}
	}
	s.transcript = append(s.transcript, Entry{At: now, Kind: "event", Text: subclass + " " + gw})
	s.notifyLocked()
}

// uptime is the first line of `status`: "UP 0 years, 0 days, 0 hours, 1
// minute, 5 seconds, 12 milliseconds, 44 microseconds".
func uptime(d time.Duration) string {
	parts := []struct {
		unit string
		size time.Duration
	}{{"year", 365 * 24 * time.Hour}, {"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute},
		{"second", time.Second}, {"millisecond", time.Millisecond}, {"microsecond", time.Microsecond}}
	var out []string
	for _, p := range parts {
		v := d / p.size
		d -= v * p.size
		unit := p.unit
		if v != 1 {
			unit += "s"
		}
		out = append(out, fmt.Sprintf("%d %s", v, unit))
	}
	return "UP " + strings.Join(out, ", ") + "\n"
}

// api answers one api command from the model.
func (s *Server) api(cmd string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.replies[cmd]; ok {
		return r
	}
	name, arg, _ := strings.Cut(cmd, " ")
	switch name {
	case "status":
		return uptime(time.Since(s.up)) +
			"FreeSWITCH (Version 1.10.12-release 64bit) is ready\n0 session(s) since startup\n" +
			"0 session(s) - peak 0, last 5min 0\n0 session(s) per Sec out of max 30, peak 0, last 5min 0\n" +
			"1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n"
	case "switchname", "hostname":
		return s.opt.Switchname
	case "module_exists":
		if arg == "mod_sofia" && s.loaded {
			return "true"
		}
		return "false"
	case "load":
		if arg != "mod_sofia" {
			return "+OK Reloading XML\n-ERR [Cannot find module " + arg + "]\n"
		}
		if s.loaded {
			return "+OK Reloading XML\n-ERR [Module already loaded]\n"
		}
		s.loaded = true
		now := time.Now()
		for _, p := range s.opt.OnLoad {
			s.profiles[p] = &profile{started: now}
			s.loadDefinedLocked(p)
		}
		return "+OK Reloading XML\n+OK\n"
	case "reloadacl":
		return "+OK acl reloaded\n"
	case "xml_flush_cache":
		return "+OK cleared 0 entries\n"
	case "sofia":
		if !s.loaded {
			return "-ERR sofia Command not found!\n"
		}
		return s.sofiaLocked(arg)
	}
	return "-ERR " + name + " Command not found!\n"
}

func (s *Server) loadDefinedLocked(profileName string) {
	for n, g := range s.defined {
		if g.Profile == profileName && s.gateways[n] == nil {
			g := g
			s.gateways[n] = &g
		}
	}
}

const xmlHeader = `<?xml version="1.0" encoding="ISO-8859-1"?>`

func (s *Server) sofiaLocked(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "USAGE: …\n"
	}
	switch f[0] {
	case "xmlstatus":
		if len(f) >= 4 && f[1] == "profile" && f[3] == "reg" {
			if s.profiles[f[2]] == nil {
				return "Invalid Profile!\n"
			}
			return s.regXMLLocked(f[2])
		}
		if len(f) >= 3 && f[1] == "gateway" {
			g, ok := s.gateways[f[2]]
			if !ok {
				return "Invalid Gateway!\n"
			}
			return gatewayXML(g)
		}
		return s.profilesXMLLocked()
	case "profile":
		if len(f) < 3 {
			return "Invalid Args!\n"
		}
		name, verb := f[1], f[2]
		if verb == "start" {
			if s.profiles[name] == nil {
				s.profiles[name] = &profile{started: time.Now()}
				s.loadDefinedLocked(name)
			}
			return "Reload XML [Success]\n" + name + " started successfully\n"
		}
		p := s.profiles[name]
		if p == nil {
			return "Invalid Profile [" + name + "]"
		}
		switch verb {
		case "flush_inbound_reg":
			return s.flushLocked(name, f[3:])
		case "rescan":
			s.loadDefinedLocked(name)
			return "Reload XML [Success]\n+OK scan complete\n"
		case "killgw":
			if len(f) < 4 {
				return "-ERR missing gw name\n"
			}
			gw := f[3]
			if _, ok := s.gateways[gw]; !ok {
				return "-ERR no such gateway.\n"
			}
			if d := s.opt.DeleteDelay; d >= 0 {
				s.timers = append(s.timers, time.AfterFunc(d, func() { s.DeleteGateway(gw) }))
			}
			return "+OK gateway marked for deletion.\n"
		case "restart":
			age := time.Since(p.started)
			if age < s.opt.RestartGuard {
				rsec := int(s.opt.RestartGuard / time.Second)
				remain := rsec - int(age/time.Second)
				plural := "s"
				if remain == 1 {
					plural = ""
				}
				return fmt.Sprintf("Profile %s must be up for at least %d seconds to stop/restart.\nPlease wait %d second%s\n", name, rsec, remain, plural)
			}
			p.started = time.Now()
			return "Reload XML [Success]\nrestarting: " + name
		}
		return "-ERR Unknown command!\n"
	}
	return "-ERR Unknown command!\n"
}

func (s *Server) profilesXMLLocked() string {
	var b strings.Builder
	b.WriteString(xmlHeader + "\n<profiles>\n")
	names := make([]string, 0, len(s.profiles))
	for n := range s.profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "<profile>\n<name>%s</name>\n<type>profile</type>\n<data>sip:mod_sofia@127.0.0.1:5060</data>\n<state>RUNNING (0)</state>\n</profile>\n", n)
		gws := make([]string, 0)
		for gn, g := range s.gateways {
			if g.Profile == n {
				gws = append(gws, gn)
			}
		}
		sort.Strings(gws)
		for _, gn := range gws {
			g := s.gateways[gn]
			fmt.Fprintf(&b, "<gateway>\n<name>%s</name>\n<type>gateway</type>\n<data>sip:%s</data>\n<state>%s</state>\n</gateway>\n", gn, g.Realm, g.State)
		}
	}
	b.WriteString("</profiles>\n")
	return b.String()
}

// gatewayXML is xml_gateway_status, its text in ISO-8859-1.
func gatewayXML(g *Gateway) string {
	uptime := int64(0)
	if g.Ping == "UP" {
		uptime = 65_000_000
	}
	var b bytes.Buffer
	b.WriteString(xmlHeader + "\n  <gateway>\n")
	fmt.Fprintf(&b, "    <name>%s</name>\n    <profile>%s</profile>\n    <scheme>Digest</scheme>\n", g.Name, g.Profile)
	fmt.Fprintf(&b, "    <realm>%s</realm>\n    <username>u</username>\n    <password>yes</password>\n", latin1(g.Realm))
	fmt.Fprintf(&b, "    <from>&lt;sip:u@%s&gt;</from>\n    <contact>&lt;sip:gw+%s@127.0.0.1:5060;transport=udp;gw=%s&gt;</contact>\n", latin1(g.Realm), g.Name, g.Name)
	fmt.Fprintf(&b, "    <exten>u</exten>\n    <to>sip:u@%s</to>\n    <proxy>sip:%s</proxy>\n    <context>public</context>\n", latin1(g.Realm), latin1(g.Realm))
	b.WriteString("    <expires>3600</expires>\n    <freq>3600</freq>\n    <ping>0</ping>\n    <pingfreq>0</pingfreq>\n")
	b.WriteString("    <pingmin>1</pingmin>\n    <pingcount>0</pingcount>\n    <pingmax>1</pingmax>\n    <pingtime>0.00</pingtime>\n    <pinging>0</pinging>\n")
	fmt.Fprintf(&b, "    <state>%s</state>\n    <status>%s</status>\n    <uptime-usec>%d</uptime-usec>\n", g.State, g.Ping, uptime)
	fmt.Fprintf(&b, "    <calls-in>%d</calls-in>\n    <calls-out>%d</calls-out>\n    <failed-calls-in>%d</failed-calls-in>\n    <failed-calls-out>%d</failed-calls-out>\n",
		g.CallsIn, g.CallsOut, g.FailedCallsIn, g.FailedCallsOut)
	if g.State == "FAILED" || g.State == "TRYING" {
		b.WriteString("    <retry>30s</retry>\n")
	}
	b.WriteString("  </gateway>\n")
	return b.String()
}

// latin1 encodes s as ISO-8859-1 bytes ('?' for what it cannot hold).
func latin1(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return string(out)
}

// regXMLLocked is cmd_xml_status for "profile P reg": the header, then
// each row as show_reg_callback_xml writes it (contact and agent through
// switch_amp_encode, sip-auth-user through switch_url_encode, the rest
// raw), in ISO-8859-1.
func (s *Server) regXMLLocked(profile string) string {
	var b strings.Builder
	b.WriteString(xmlHeader + "\n<profile>\n  <registrations>\n")
	now := time.Now()
	for _, r := range s.regs[profile] {
		def := func(v, d string) string {
			if v == "" {
				return d
			}
			return v
		}
		expBuf, expSecs := "", 0
		if !r.Expires.IsZero() {
			expBuf = r.Expires.Local().Format("2006-01-02 15:04:05") // switch_time_exp_lt: local time
			expSecs = int(r.Expires.Unix() - now.Unix())
		}
		b.WriteString("    <registration>\n")
		fmt.Fprintf(&b, "        <call-id>%s</call-id>\n", latin1(r.CallID))
		fmt.Fprintf(&b, "        <user>%s@%s</user>\n", latin1(r.SIPUser), latin1(r.SIPHost))
		fmt.Fprintf(&b, "        <contact>%s</contact>\n", latin1(ampEncode(r.Contact)))
		fmt.Fprintf(&b, "        <agent>%s</agent>\n", latin1(ampEncode(r.Agent)))
		fmt.Fprintf(&b, "        <status>%s(%s) exp(%s) expsecs(%d)</status>\n", latin1(def(r.Status, "Registered(UDP)")),
			latin1(def(r.RPID, "unknown")), expBuf, expSecs)
		fmt.Fprintf(&b, "        <ping-status>%s</ping-status>\n", latin1(def(r.PingStatus, "Reachable")))
		fmt.Fprintf(&b, "        <host>%s</host>\n", latin1(def(r.Hostname, s.opt.Switchname)))
		fmt.Fprintf(&b, "        <network-ip>%s</network-ip>\n", r.NetworkIP)
		fmt.Fprintf(&b, "        <network-port>%s</network-port>\n", r.NetworkPort)
		fmt.Fprintf(&b, "        <sip-auth-user>%s</sip-auth-user>\n", encode(r.AuthUser))
		fmt.Fprintf(&b, "        <sip-auth-realm>%s</sip-auth-realm>\n", latin1(r.AuthRealm))
		fmt.Fprintf(&b, "        <mwi-account>%s@%s</mwi-account>\n", latin1(r.MWIUser), latin1(r.MWIHost))
		b.WriteString("    </registration>\n")
	}
	b.WriteString("  </registrations>\n</profile>\n")
	return b.String()
}

// ampEncode is switch_amp_encode (switch_utils.c): the five XML entities.
var ampEncode = strings.NewReplacer("\"", "&quot;", "'", "&apos;", "&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// flushLocked is cmd_profile's flush_inbound_reg: no argument, or
// "reboot" alone, flushes every row with an expiry; otherwise the rows
// sofia_reg_expire_call_id matches (call_id = ARG, or for "user@host"
// sip_user and sip_host, or without '@' sip_host = ARG), in every profile
// (the delete is not limited to the profile). Like FreeSWITCH, it says +OK
// whether or not anything matched.
func (s *Server) flushLocked(profile string, args []string) string {
	reboot := false
	if len(args) > 0 && strings.EqualFold(args[0], "reboot") {
		reboot, args = true, nil
	}
	verb := "flushing"
	if len(args) == 0 {
		if reboot {
			verb = "rebooting"
		}
		fl := Flush{Profile: profile, Reboot: reboot}
		for p, rows := range s.regs {
			for _, r := range rows {
				fl.Removed = append(fl.Removed, r.CallID)
			}
			delete(s.regs, p)
		}
		s.flushes = append(s.flushes, fl)
		return "+OK " + verb + " all registrations\n"
	}
	arg := args[0]
	if len(args) > 1 && strings.EqualFold(args[1], "reboot") {
		reboot, verb = true, "rebooting"
	}
	fl := Flush{Profile: profile, Arg: arg, Reboot: reboot}
	user, host, at := strings.Cut(arg, "@")
	if !at {
		user, host = "", arg
	}
	for p, rows := range s.regs {
		kept := rows[:0]
		for _, r := range rows {
			match := r.CallID == arg || (user == "" && r.SIPHost == host) || (user != "" && r.SIPUser == user && r.SIPHost == host)
			if match {
				fl.Removed = append(fl.Removed, r.CallID)
			} else {
				kept = append(kept, r)
			}
		}
		s.regs[p] = kept
	}
	s.flushes = append(s.flushes, fl)
	return "+OK " + verb + " all registrations matching specified call_id\n"
}
