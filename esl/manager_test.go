package esl_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func runbookServer(t testing.TB, opt esltest.Options) *esltest.Server {
	if opt.Profiles == nil && !opt.SofiaMissing {
		opt.Profiles = []string{"external-ipv4", "internal"}
	}
	if opt.Gateways == nil {
		opt.Gateways = []esltest.Gateway{
			{Name: "plusnet", Profile: "external-ipv4", Realm: "sip.plusnet.de"},
			{Name: "einsundeins", Profile: "internal", Register: true, Realm: "sip.1und1.de"},
		}
	}
	return esltest.Start(t, opt)
}

func TestNewValidatesOptions(t *testing.T) {
	w := newWorld(t, "sqlite")
	cases := map[string]esl.Options{
		"no store":          {Password: "ClueCon"},
		"no password":       {Store: w.store},
		"password newline":  {Store: w.store, Password: "ClueCon\n\napi fsctl shutdown"},
		"node without port": {Store: w.store, Password: "x", Nodes: []string{"127.0.0.1"}},
		"node bad port":     {Store: w.store, Password: "x", Nodes: []string{"127.0.0.1:99999"}},
		"node twice":        {Store: w.store, Password: "x", Nodes: []string{"fs1:8021", "fs1:8021"}},
		"reconnect max<min": {Store: w.store, Password: "x", ReconnectMin: time.Second, ReconnectMax: time.Millisecond},
	}
	for name, opt := range cases {
		if _, err := esl.New(opt); !errors.Is(err, esl.ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := esl.New(esl.Options{Store: w.store, Password: "ClueCon", Nodes: []string{"[::1]:8021", "fs1:8021"}}); err != nil {
		t.Fatal(err)
	}
}

// On connect a node is checked and brought up to date, sending only what is
// needed: mod_sofia and the profiles are there, so no load and no start.
func TestSyncOnConnect(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	m, _ := w.run(fast(w, srv.Addr()))
	synced(t, srv)
	got := srv.Commands()
	want := []string{
		"event plain CUSTOM sofia::gateway_state sofia::gateway_delete sofia::gateway_add",
		"api switchname",
		"api status", // FreeSWITCH's uptime
		"api module_exists mod_sofia",
		"api sofia xmlstatus",
		"api sofia profile external-ipv4 rescan",
		"api sofia profile internal rescan",
		"api reloadacl",
	}
	if strings.Join(got[:len(want)], "|") != strings.Join(want, "|") {
		t.Fatalf("sync sent\n%q\nwant\n%q", got, want)
	}
	waitFor(t, "node connected and clean", func() bool {
		st := nodeStatus(m, srv.Addr())
		return st.State == esl.StateConnected && st.Pending == 0 && st.Switchname == "esltest"
	})
}

// FreeSWITCH started while the backend was down: mod_sofia did not load.
func TestSyncLoadsMissingSofia(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{SofiaMissing: true, OnLoad: []string{"external-ipv4", "internal"}})
	w.run(fast(w, srv.Addr()))
	synced(t, srv)
	cmds := srv.Commands()
	if i, j := indexOf(cmds, "api load mod_sofia"), indexOf(cmds, "api sofia profile internal rescan"); i < 0 || j < i {
		t.Fatalf("load mod_sofia missing or after the rescans: %q", cmds)
	}
	if len(only(cmds, "api sofia profile external-ipv4 start", "api sofia profile internal start")) != 0 {
		t.Fatalf("profiles the load started were started again: %q", cmds)
	}
	if !srv.SofiaLoaded() {
		t.Fatal("mod_sofia still not loaded")
	}
}

// FreeSWITCH started with an empty static sofia.conf: mod_sofia loaded, no
// profiles ("Invalid Profile").
func TestSyncStartsMissingProfiles(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{Profiles: []string{}})
	w.run(fast(w, srv.Addr()))
	synced(t, srv)
	cmds := srv.Commands()
	for _, p := range []string{"external-ipv4", "internal"} {
		start, rescan := indexOf(cmds, "api sofia profile "+p+" start"), indexOf(cmds, "api sofia profile "+p+" rescan")
		if start < 0 || rescan < start {
			t.Fatalf("profile %s: start at %d, rescan at %d: %q", p, start, rescan, cmds)
		}
	}
	if indexOf(cmds, "api load mod_sofia") >= 0 {
		t.Fatalf("loaded mod_sofia although it was there: %q", cmds)
	}
	if got := srv.Profiles(); len(got) != 2 {
		t.Fatalf("running profiles %v", got)
	}
}

// Each kind of change gives its minimal commands, and nothing else.
func TestChangesBecomeCommands(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{DeleteDelay: 20 * time.Millisecond})
	m, _ := w.run(fast(w, srv.Addr()))
	synced(t, srv)

	step := func(name string, change func(), want ...string) {
		t.Helper()
		srv.ResetTranscript()
		change()
		w.barrier()
		waitCmd(t, srv, "api reloadacl", 1)
		got := only(srv.Commands(), "api sofia profile", "api xml_flush_cache", "api reloadacl")
		want = append(want, "api reloadacl")
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%s: sent\n%q\nwant\n%q", name, got, want)
		}
	}
	step("description only", func() { w.edit("plusnet", func(tr *models.Trunk) { tr.Description = "Plusnet, IP auth" }) })
	step("DIDs only", func() {
		w.edit("plusnet", func(tr *models.Trunk) { tr.Numbers = append(tr.Numbers, "+493455667291") })
	})
	step("new trunk", func() {
		w.trunk(&models.Trunk{Name: "sipgate", Provider: "plusnet", Profile: "external-ipv4", Proxy: "sipgate.de", Enabled: true})
	}, "api sofia profile external-ipv4 rescan")
	step("changed trunk", func() { w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = "sip2.plusnet.de" }) },
		"api sofia profile external-ipv4 killgw plusnet", "api sofia profile external-ipv4 rescan")
	step("moved trunk", func() { w.edit("plusnet", func(tr *models.Trunk) { tr.Profile = "internal" }) },
		"api sofia profile external-ipv4 killgw plusnet", "api sofia profile external-ipv4 rescan", "api sofia profile internal rescan")
	step("disabled trunk", func() { w.edit("sipgate", func(tr *models.Trunk) { tr.Enabled = false }) },
		"api sofia profile external-ipv4 killgw sipgate")
	step("trunk for another node", func() {
		w.edit("plusnet", func(tr *models.Trunk) { tr.Hostnames = models.StringList{"fs-other"} })
	}, "api sofia profile internal killgw plusnet") // its hostnames changed: it may have been loaded here
	step("trunk elsewhere changed again", func() { w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = "sip3.plusnet.de" }) })
	step("deleted trunk", func() {
		tr, _ := w.store.TrunkByName(w.ctx, "plusnet")
		if err := w.store.DeleteTrunk(w.ctx, tr.ID, 0); err != nil {
			t.Fatal(err)
		}
	}, "api sofia profile internal killgw plusnet") // deletes are sent everywhere: Hostnames are gone with the row
	step("extension password", func() {
		pw := "x"
		e := &models.Extension{Domain: "pbx.example.com", UserID: "1001", Password: &pw, Enabled: true, Context: "default"}
		if err := w.store.CreateExtension(w.ctx, e); err != nil {
			t.Fatal(err)
		}
		pw2 := "y"
		e.Password = &pw2
		if err := w.store.UpdateExtension(w.ctx, e); err != nil {
			t.Fatal(err)
		}
	}, "api xml_flush_cache id 1001 pbx.example.com")
	step("profile setting", func() {
		p, _ := w.store.ProfileByName(w.ctx, "internal")
		p.AuthCalls = false
		if err := w.store.UpdateProfile(w.ctx, p); err != nil {
			t.Fatal(err)
		}
	}, "api sofia profile internal rescan")
	step("profile binding, restarts not allowed", func() {
		p, _ := w.store.ProfileByName(w.ctx, "internal")
		p.SIPPort = 5070
		if err := w.store.UpdateProfile(w.ctx, p); err != nil {
			t.Fatal(err)
		}
	})
	step("new profile", func() {
		if err := w.store.CreateProfile(w.ctx, &models.Profile{Name: "wss", Family: models.FamilyDual, BindIP: "::", SIPPort: 5080}); err != nil {
			t.Fatal(err)
		}
	}, "api sofia profile wss start")
	waitFor(t, "nothing owed", func() bool { return nodeStatus(m, srv.Addr()).Pending == 0 })
}

// A registering trunk's rescan waits for FreeSWITCH to delete the old
// gateway (its un-REGISTER carries the same Contact). With a fake clock the
// wait cannot time out: the rescan can only follow the event.
func TestRegisteringTrunkRescanWaitsForGatewayDelete(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{DeleteDelay: 30 * time.Millisecond})
	opt, clk := faked(w, srv.Addr())
	m, _ := w.run(opt)
	synced(t, srv)
	srv.ResetTranscript()
	w.edit("einsundeins", func(tr *models.Trunk) { tr.Realm = "sip.1und1.de."; pw := "neu"; tr.Password = &pw })
	w.settle(m, clk, srv.Addr(), opt.CoalesceWindow)
	waitCmd(t, srv, "api sofia profile internal rescan", 1)
	var order []string
	for _, e := range srv.Transcript() {
		if strings.Contains(e.Text, "einsundeins") || e.Text == "api sofia profile internal rescan" {
			order = append(order, e.Kind+" "+e.Text)
		}
	}
	want := []string{"cmd api sofia profile internal killgw einsundeins", "event sofia::gateway_delete einsundeins", "cmd api sofia profile internal rescan"}
	if strings.Join(order, "|") != strings.Join(want, "|") {
		t.Fatalf("order\n%q\nwant\n%q", order, want)
	}
	// esltest records a command before it runs it: wait for the rescan's
	// effect rather than read the gateway right after the command arrived.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Wait(ctx, func(s *esltest.Server) bool {
		g, ok := s.Gateway("einsundeins")
		return ok && g.State == "REGED"
	}); err != nil {
		g, ok := srv.Gateway("einsundeins")
		t.Fatalf("gateway after the rescan: %+v %v (%v)", g, ok, err)
	}
}

// When the delete does not come in time the rescan goes anyway, and once
// more when the delete finally arrives.
func TestGatewayDeleteTimeoutFallsBack(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{DeleteDelay: -1})
	reg := prometheus.NewRegistry()
	opt, clk := faked(w, srv.Addr())
	opt.DeleteWait, opt.Registerer = 7*time.Second, reg
	m, _ := w.run(opt)
	synced(t, srv)
	srv.ResetTranscript()
	w.edit("einsundeins", func(tr *models.Trunk) { tr.ExpireSeconds = 600 })
	w.settle(m, clk, srv.Addr(), opt.CoalesceWindow)
	waitCmd(t, srv, "api sofia profile internal killgw einsundeins", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := clk.WaitTimer(ctx, opt.DeleteWait); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("api sofia profile internal rescan"); n != 0 {
		t.Fatalf("rescan before the delete or the deadline: %q", srv.Commands())
	}
	clk.Advance(opt.DeleteWait)
	waitCmd(t, srv, "api sofia profile internal rescan", 1)
	if n := counter(t, reg, "fsplane_esl_gateway_delete_waits_total", map[string]string{"outcome": "timeout"}); n != 1 {
		t.Fatalf("timeouts counted: %v", n)
	}
	srv.DeleteGateway("einsundeins")
	waitCmd(t, srv, "api sofia profile internal rescan", 2)
}

// A hundred edits in a burst: one killgw per gateway, one rescan per
// profile, and nothing before the window closes.
func TestBurstIsCoalesced(t *testing.T) {
	w := newWorld(t, "sqlite")
	var names []string
	for i := range 10 {
		tr := w.trunk(&models.Trunk{Name: "burst" + string(rune('a'+i)), Provider: "plusnet", Profile: "external-ipv4", Proxy: "x.example", Enabled: true})
		names = append(names, tr.Name)
	}
	srv := runbookServer(t, esltest.Options{})
	opt, clk := faked(w, srv.Addr())
	m, _ := w.run(opt)
	synced(t, srv)
	srv.ResetTranscript()
	for i := range 100 {
		w.edit(names[i%10], func(tr *models.Trunk) { tr.RetrySeconds = 30 + i })
	}
	last, _ := w.store.LastChangeID(w.ctx)
	waitFor(t, "burst folded", func() bool { return m.SeenChangeID(srv.Addr()) == last })
	if got := srv.Commands(); len(got) != 0 {
		t.Fatalf("commands before the window closed: %q", got)
	}
	if st := nodeStatus(m, srv.Addr()); st.Pending != 11 {
		t.Fatalf("pending %d, want 10 killgw and 1 rescan", st.Pending)
	}
	clk.Advance(opt.CoalesceWindow)
	waitCmd(t, srv, "api sofia profile external-ipv4 rescan", 1)
	waitFor(t, "plan applied", func() bool { return nodeStatus(m, srv.Addr()).Pending == 0 })
	w.barrier()
	w.settle(m, clk, srv.Addr(), opt.CoalesceWindow)
	waitCmd(t, srv, "api reloadacl", 1)
	got := only(srv.Commands(), "api sofia profile")
	if n := srv.Count("api sofia profile external-ipv4 rescan"); n != 1 {
		t.Fatalf("%d rescans for 100 edits: %q", n, got)
	}
	for _, name := range names {
		if n := srv.Count("api sofia profile external-ipv4 killgw " + name); n != 1 {
			t.Fatalf("killgw %s sent %d times: %q", name, n, got)
		}
	}
	if len(got) != 11 {
		t.Fatalf("sent %d sofia commands, want 11: %q", len(got), got)
	}
}

func TestTwoNodesBothReceiveCommands(t *testing.T) {
	w := newWorld(t, "sqlite")
	a := runbookServer(t, esltest.Options{Switchname: "fs1"})
	b := runbookServer(t, esltest.Options{Switchname: "fs2"})
	m, _ := w.run(fast(w, a.Addr(), b.Addr()))
	synced(t, a)
	synced(t, b)
	a.ResetTranscript()
	b.ResetTranscript()
	w.edit("plusnet", func(tr *models.Trunk) { tr.OutboundProxy = "92.197.176.17" })
	for _, srv := range []*esltest.Server{a, b} {
		waitCmd(t, srv, "api sofia profile external-ipv4 rescan", 1)
		if got := only(srv.Commands(), "api sofia"); strings.Join(got, "|") !=
			"api sofia profile external-ipv4 killgw plusnet|api sofia profile external-ipv4 rescan" {
			t.Fatalf("%s got %q", srv.Addr(), got)
		}
	}
	// Scoped to fs2: only b hears of it.
	a.ResetTranscript()
	b.ResetTranscript()
	w.trunk(&models.Trunk{Name: "fs2only", Provider: "plusnet", Profile: "internal", Proxy: "x.example", Enabled: true, Hostnames: models.StringList{"FS2"}})
	w.barrier()
	waitCmd(t, a, "api reloadacl", 1)
	waitCmd(t, b, "api reloadacl", 1)
	if a.Count("api sofia profile internal rescan") != 0 || b.Count("api sofia profile internal rescan") != 1 {
		t.Fatalf("a %q, b %q", a.Commands(), b.Commands())
	}
	sts := m.Nodes()
	if len(sts) != 2 || sts[0].Switchname != "fs1" || sts[1].Switchname != "fs2" {
		t.Fatalf("%+v", sts)
	}
}

// FreeSWITCH dies; changes made meanwhile are applied when it is back.
func TestReconnectAfterServerDeath(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	reg := prometheus.NewRegistry()
	opt := fast(w, srv.Addr())
	opt.Registerer = reg
	m, _ := w.run(opt)
	synced(t, srv)
	srv.Kill()
	waitFor(t, "node seen down", func() bool { return nodeStatus(m, srv.Addr()).State != esl.StateConnected })
	w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = "sip-b.plusnet.de" })
	w.barrier()
	waitFor(t, "changes pending while down", func() bool { return nodeStatus(m, srv.Addr()).Pending >= 3 })
	waitFor(t, "a refused reconnect", func() bool {
		return counter(t, reg, "fsplane_esl_connects_total", map[string]string{"result": "refused"}) >= 1
	})
	srv.ResetTranscript()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitCmd(t, srv, "api reloadacl", 1)
	waitCmd(t, srv, "api sofia profile external-ipv4 killgw plusnet", 1)
	cmds := srv.Commands()
	if k, r := indexOf(cmds, "api sofia profile external-ipv4 killgw plusnet"), indexOf(cmds, "api sofia profile external-ipv4 rescan"); r < k {
		t.Fatalf("rescan before killgw: %q", cmds)
	}
	last, _ := w.store.LastChangeID(w.ctx)
	waitFor(t, "cursor at the newest change", func() bool {
		st := nodeStatus(m, srv.Addr())
		return st.State == esl.StateConnected && st.Pending == 0 && st.AppliedChangeID == last
	})
	if id, _, _ := w.store.ESLCursor(w.ctx, srv.Addr()); id != last {
		t.Fatalf("stored cursor %d, want %d", id, last)
	}
}

// FreeSWITCH hangs (accepts, never answers): the health check notices, the
// node reconnects once it answers again, and no connection is leaked.
func TestReconnectAfterHang(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	reg := prometheus.NewRegistry()
	opt := fast(w, srv.Addr())
	opt.Registerer = reg
	// Only a hung node waits these out; loopback answers in milliseconds.
	opt.HealthTimeout, opt.AuthTimeout = 250*time.Millisecond, 500*time.Millisecond
	m, _ := w.run(opt)
	synced(t, srv)
	srv.Hang()
	waitFor(t, "hung node seen down", func() bool { return nodeStatus(m, srv.Addr()).State != esl.StateConnected })
	waitFor(t, "a redial that timed out", func() bool {
		return counter(t, reg, "fsplane_esl_connects_total", map[string]string{"result": "timeout"}) >= 1
	})
	if n := counter(t, reg, "fsplane_esl_health_checks_total", map[string]string{"result": "failed"}); n < 1 {
		t.Fatalf("failed health checks: %v", n)
	}
	w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = "sip-h.plusnet.de" })
	srv.ResetTranscript()
	srv.Unhang()
	waitCmd(t, srv, "api reloadacl", 1)
	waitCmd(t, srv, "api sofia profile external-ipv4 killgw plusnet", 1)
	waitFor(t, "one connection left", func() bool { return srv.Conns() == 1 })
	waitFor(t, "connected", func() bool { return nodeStatus(m, srv.Addr()).State == esl.StateConnected })
}

func TestWrongPasswordIsReportedAndRetried(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{Password: "not-ClueCon"})
	reg := prometheus.NewRegistry()
	opt := fast(w, srv.Addr())
	opt.Password, opt.Registerer = "wrong-guess", reg
	m, _ := w.run(opt)
	waitFor(t, "two refused attempts", func() bool {
		return counter(t, reg, "fsplane_esl_connects_total", map[string]string{"result": "auth"}) >= 2
	})
	st := nodeStatus(m, srv.Addr())
	if st.State == esl.StateConnected || !strings.Contains(st.LastError, "password refused") || strings.Contains(st.LastError, "wrong-guess") {
		t.Fatalf("%+v", st)
	}
	if len(srv.Commands()) != 0 {
		t.Fatalf("commands reached the server: %q", srv.Commands())
	}
}

func TestACLRejectionDoesNotHang(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	srv.SetRejectACL(true)
	reg := prometheus.NewRegistry()
	opt := fast(w, srv.Addr())
	opt.Registerer = reg
	opt.AuthTimeout = time.Minute // a hang would not be rescued by the auth timeout
	m, _ := w.run(opt)
	waitFor(t, "two rejected attempts", func() bool {
		return counter(t, reg, "fsplane_esl_connects_total", map[string]string{"result": "rejected"}) >= 2
	})
	if st := nodeStatus(m, srv.Addr()); !strings.Contains(st.LastError, "ACL rejected") {
		t.Fatalf("%+v", st)
	}
	srv.SetRejectACL(false)
	synced(t, srv)
}

// fsplane restarts with work still owed: a new Manager on the same database
// applies it, and only once.
func TestRestartWithPendingWork(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		w := newWorld(t, backend)
		srv := runbookServer(t, esltest.Options{})
		srv.Kill()
		m1, stop1 := w.run(fast(w, srv.Addr()))
		waitFor(t, "first manager tried", func() bool { return nodeStatus(m1, srv.Addr()).LastError != "" })
		w.edit("plusnet", func(tr *models.Trunk) { tr.Proxy = "sip-r.plusnet.de" })
		tr, _ := w.store.TrunkByName(w.ctx, "einsundeins")
		if err := w.store.DeleteTrunk(w.ctx, tr.ID, 0); err != nil {
			t.Fatal(err)
		}
		w.barrier()
		waitFor(t, "work pending", func() bool { return nodeStatus(m1, srv.Addr()).Pending >= 3 })
		stop1()

		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		m2, stop2 := w.run(fast(w, srv.Addr()))
		waitCmd(t, srv, "api sofia profile internal killgw einsundeins", 1)
		waitCmd(t, srv, "api sofia profile external-ipv4 killgw plusnet", 1)
		synced(t, srv)
		waitFor(t, "second manager done", func() bool { return nodeStatus(m2, srv.Addr()).Pending == 0 })
		last, _ := w.store.LastChangeID(w.ctx)
		waitFor(t, "cursor stored", func() bool { id, _, _ := w.store.ESLCursor(w.ctx, srv.Addr()); return id == last })
		stop2()

		srv.ResetTranscript()
		w.run(fast(w, srv.Addr()))
		synced(t, srv)
		if n := len(only(srv.Commands(), "api sofia profile internal killgw", "api sofia profile external-ipv4 killgw")); n != 0 {
			t.Fatalf("applied again after a restart: %q", srv.Commands())
		}
	})
}

// A value that could carry a second command never reaches the wire: names
// that slipped past the API (written straight to the store here) are
// refused, gateway parameters never travel over ESL, and the one intended
// command for a legitimate change still goes out.
func TestInjectionNeverReachesTheWire(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	reg := prometheus.NewRegistry()
	opt, clk := faked(w, srv.Addr()) // one batch: the window closes when the test says
	opt.Registerer = reg
	m, _ := w.run(opt)
	synced(t, srv)
	srv.ResetTranscript()

	for _, name := range []string{"evil\n\napi fsctl shutdown", "evil\r\napi fsctl shutdown", "evil killgw _all_"} {
		tr := w.trunk(&models.Trunk{Name: name, Provider: "plusnet", Profile: "external-ipv4", Proxy: "x.example", Enabled: true})
		if err := w.store.DeleteTrunk(w.ctx, tr.ID, 0); err != nil { // → killgw NAME: refused
			t.Fatal(err)
		}
	}
	w.trunk(&models.Trunk{Name: "okname", Provider: "plusnet", Profile: "internal\n\napi fsctl shutdown", Proxy: "x.example", Enabled: true})
	w.trunk(&models.Trunk{Name: "okname2", Provider: "plusnet", Profile: "internal killgw _all_", Proxy: "x.example", Enabled: true})
	// A gateway parameter with line breaks: legitimate change, it travels
	// in xml-curl's XML only.
	w.edit("plusnet", func(tr *models.Trunk) { tr.Realm = "sip.plusnet.de\n\napi fsctl shutdown"; tr.FromUser = "a b\r\nc" })
	pw := "x"
	if err := w.store.CreateExtension(w.ctx, &models.Extension{Domain: "pbx.example.com", UserID: "1001\n\napi fsctl shutdown", Password: &pw, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	ext, _ := w.store.ExtensionByUser(w.ctx, "pbx.example.com", "1001\n\napi fsctl shutdown")
	ext.DisplayName = "changed"
	if err := w.store.UpdateExtension(w.ctx, ext); err != nil {
		t.Fatal(err)
	}
	w.barrier()
	w.settle(m, clk, srv.Addr(), opt.CoalesceWindow)
	waitCmd(t, srv, "api reloadacl", 1)

	allowed := regexp.MustCompile(`^api (sofia profile [a-z0-9][a-z0-9._-]* (rescan|start|restart|killgw [a-z0-9][a-z0-9._-]*)|reloadacl|status|switchname|module_exists mod_sofia|sofia xmlstatus|xml_flush_cache id [A-Za-z0-9._+-]+ [A-Za-z0-9.:\[\]-]+)$`)
	for _, c := range srv.Commands() {
		if !allowed.MatchString(c) || strings.Contains(c, "shutdown") || strings.Contains(c, "_all_") {
			t.Errorf("unexpected command on the wire: %q", c)
		}
	}
	if got := only(srv.Commands(), "api sofia profile external-ipv4"); strings.Join(got, "|") !=
		"api sofia profile external-ipv4 killgw plusnet|api sofia profile external-ipv4 rescan" {
		t.Fatalf("the legitimate change: %q", got)
	}
	if n := counter(t, reg, "fsplane_esl_refused_values_total", nil); n < 6 {
		t.Fatalf("refused values counted: %v", n)
	}
	if st := nodeStatus(m, srv.Addr()); !strings.Contains(st.LastError, "invalid") && !strings.Contains(st.LastError, "not allowed") {
		t.Fatalf("refusal not reported: %+v", st)
	}
}

// A binding change restarts the profile, never in its first 10 seconds:
// fsplane counts from its own start of the profile.
func TestProfileRestartWaitsTenSeconds(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{Profiles: []string{"external-ipv4"}, RestartGuard: time.Millisecond})
	opt, clk := faked(w, srv.Addr())
	opt.AllowRestart = true
	m, _ := w.run(opt)
	synced(t, srv) // fsplane started "internal" itself
	waitCmd(t, srv, "api sofia profile internal start", 1)
	p, _ := w.store.ProfileByName(w.ctx, "internal")
	p.ExtSIPIP = "2a01:4f8:140:829d::3"
	if err := w.store.UpdateProfile(w.ctx, p); err != nil {
		t.Fatal(err)
	}
	w.barrier()
	w.settle(m, clk, srv.Addr(), opt.CoalesceWindow)
	waitCmd(t, srv, "api reloadacl", 2)
	if n := srv.Count("api sofia profile internal restart"); n != 0 {
		t.Fatalf("restarted %d times within the first 10 seconds", n)
	}
	clk.Advance(11 * time.Second)
	waitCmd(t, srv, "api sofia profile internal restart", 1)
}

// A profile fsplane did not start: FreeSWITCH's refusal says how long to
// wait, and fsplane comes back then.
func TestProfileRestartHonoursFreeSWITCHRefusal(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	opt, clk := faked(w, srv.Addr())
	opt.AllowRestart = true
	m, _ := w.run(opt)
	synced(t, srv)
	p, _ := w.store.ProfileByName(w.ctx, "internal")
	p.TLS, p.TLSPort = true, 5061
	if err := w.store.UpdateProfile(w.ctx, p); err != nil {
		t.Fatal(err)
	}
	w.settle(m, clk, srv.Addr(), opt.CoalesceWindow)
	waitCmd(t, srv, "api sofia profile internal restart", 1) // refused: "Please wait 10 seconds"
	w.barrier()
	w.settle(m, clk, srv.Addr(), opt.CoalesceWindow)
	waitCmd(t, srv, "api reloadacl", 2)
	if n := srv.Count("api sofia profile internal restart"); n != 1 {
		t.Fatalf("%d restart attempts before the profile's 10 seconds were up", n)
	}
	waitFor(t, "only the restart owed", func() bool { return nodeStatus(m, srv.Addr()).Pending == 1 })
	srv.SetProfileStarted("internal", time.Now().Add(-time.Minute))
	clk.Advance(11 * time.Second)
	waitCmd(t, srv, "api sofia profile internal restart", 2)
	waitFor(t, "restart applied", func() bool { return nodeStatus(m, srv.Addr()).Pending == 0 })
}

// A command FreeSWITCH refuses stays owed, is retried and reported; the
// cursor waits for it.
func TestRefusedCommandIsRetriedNotDropped(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{})
	m, _ := w.run(fast(w, srv.Addr()))
	synced(t, srv)
	srv.SetReply("reloadacl", "-Error [Cannot Open log directory or XML Root!]\n")
	before, _, _ := w.store.ESLCursor(w.ctx, srv.Addr())
	w.barrier()
	waitCmd(t, srv, "api reloadacl", 3)
	st := nodeStatus(m, srv.Addr())
	if st.Pending != 1 || !strings.Contains(st.LastError, "reloadacl") || st.AppliedChangeID != before {
		t.Fatalf("%+v (cursor was %d)", st, before)
	}
	srv.SetReply("reloadacl", "+OK acl reloaded\n")
	last, _ := w.store.LastChangeID(w.ctx)
	waitFor(t, "applied after FreeSWITCH recovered", func() bool {
		st := nodeStatus(m, srv.Addr())
		return st.Pending == 0 && st.AppliedChangeID == last
	})
	// The problem is over: it shows as the previous error, with its time.
	if st := nodeStatus(m, srv.Addr()); st.LastError != "" || !st.LastErrorAt.IsZero() ||
		!strings.Contains(st.PreviousError, "reloadacl") || st.PreviousErrorAt.IsZero() {
		t.Fatalf("%+v", st)
	}
}

func TestGatewayStatus(t *testing.T) {
	w := newWorld(t, "sqlite")
	srv := runbookServer(t, esltest.Options{Gateways: []esltest.Gateway{
		{Name: "plusnet", Profile: "external-ipv4", Realm: "sip.plusnet.de"},
		{Name: "einsundeins", Profile: "internal", Register: true, State: "FAIL_WAIT", Ping: "DOWN", Realm: "münchen.example"},
	}})
	m, _ := w.run(fast(w, srv.Addr()))
	synced(t, srv)
	ctx := context.Background()

	pn, _ := w.store.TrunkByName(w.ctx, "plusnet")
	got, err := m.GatewayStatus(ctx, *pn)
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	if g := got[0]; g.State != "NOREG" || !g.Healthy || g.Register || g.Profile != "external-ipv4" || g.Node != srv.Addr() || g.Uptime != 65 {
		t.Fatalf("IP-auth trunk: %+v", g)
	}

	one, _ := w.store.TrunkByName(w.ctx, "einsundeins")
	got, _ = m.GatewayStatus(ctx, *one)
	if g := got[0]; g.State != "FAIL_WAIT" || g.Healthy || !g.Register || g.Status != "DOWN" {
		t.Fatalf("failing registration: %+v", g)
	}
	srv.SetGatewayState("einsundeins", "REGED", "UP")
	got, _ = m.GatewayStatus(ctx, *one)
	if g := got[0]; g.State != "REGED" || !g.Healthy {
		t.Fatalf("registered: %+v", g)
	}

	absent := &models.Trunk{Name: "notloaded", Profile: "internal", Enabled: true}
	got, _ = m.GatewayStatus(ctx, *absent)
	if g := got[0]; g.State != esl.GatewayAbsent || g.Healthy {
		t.Fatalf("absent: %+v", g)
	}
	elsewhere := &models.Trunk{Name: "plusnet", Profile: "external-ipv4", Enabled: true, Hostnames: models.StringList{"fs9"}}
	if got, _ := m.GatewayStatus(ctx, *elsewhere); len(got) != 0 {
		t.Fatalf("a trunk for another node: %+v", got)
	}
	if _, err := m.GatewayStatus(ctx, models.Trunk{Name: "x\n\napi fsctl shutdown"}); !errors.Is(err, esl.ErrInvalidValue) {
		t.Fatalf("%v", err)
	}

	// Node away: the last sofia::gateway_state event answers.
	srv.SetGatewayState("einsundeins", "UNREGED", "DOWN")
	waitFor(t, "event seen", func() bool {
		got, _ := m.GatewayStatus(ctx, *one)
		return got[0].State == "UNREGED"
	})
	srv.Kill()
	waitFor(t, "node down", func() bool { return nodeStatus(m, srv.Addr()).State != esl.StateConnected })
	got, _ = m.GatewayStatus(ctx, *one)
	if g := got[0]; g.State != "UNREGED" || g.Healthy || !strings.Contains(g.Detail, "not connected") {
		t.Fatalf("from events: %+v", g)
	}
}
