package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/esl/esltest"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/models/pgtest"
	"github.com/fsplane/fsplane/secrets"
)

// TestReplicaProcess is no test: it is `fsplane serve` in a process of its
// own (this test binary run again), for tests that kill a replica with
// SIGKILL.
func TestReplicaProcess(t *testing.T) {
	if os.Getenv("FSPLANE_TEST_REPLICA") != "1" {
		t.Skip("helper process for TestReplicasOneESLLeader")
	}
	os.Exit(run(flag.Args(), os.Stdout, os.Stderr, os.Getenv))
}

type replicaProc struct {
	name   string
	base   string // http://host:port
	id     string // its replica ID
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
}

var replicaRe = regexp.MustCompile(`fsplane serving.*replica=(\S+)`)

// startReplica runs `fsplane serve` in a child process and waits until it
// answers /healthz.
func startReplica(t testing.TB, name string, env map[string]string) *replicaProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$", "--", "serve", "--listen", addr)
	cmd.Env = append(os.Environ(), "FSPLANE_TEST_REPLICA=1", "FSPLANE_DATA_DIR="+t.TempDir())
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &replicaProc{name: name, base: "http://" + addr, cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("replica %s (%s) log:\n%s", p.name, p.id, p.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("replica %s exited at start:\n%s", name, p.stderr.String())
		default:
		}
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if m := replicaRe.FindStringSubmatch(p.stderr.String()); resp.StatusCode == http.StatusOK && m != nil {
				p.id = m[1]
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s did not start:\n%s", name, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *replicaProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// nodes is the replica's GET /api/v1/esl/nodes.
func (p *replicaProc) nodes(t *testing.T, token string) []esl.NodeStatus {
	t.Helper()
	code, body := do(t, http.MethodGet, p.base+"/api/v1/esl/nodes", token, "", "")
	var out []esl.NodeStatus
	if code != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("%s: esl nodes: %d %s", p.name, code, body)
	}
	return out
}

// fsModel makes an esltest node behave like FreeSWITCH behind xml-curl: a
// profile's start or rescan loads what the database holds for it, each
// gateway marked with its trunk's version (as Realm), so a node's loaded
// gateways can be compared with the database.
func fsModel(t *testing.T, srv *esltest.Server, store *models.Store) {
	var mu sync.Mutex
	defined := map[string]string{} // gateway → profile
	srv.OnCommand(func(line string, _ time.Time) {
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "api" || f[1] != "sofia" || f[2] != "profile" || (f[4] != "rescan" && f[4] != "start") {
			return
		}
		profile := f[3]
		trunks, err := store.EnabledTrunks(context.Background(), profile)
		for try := 0; err != nil && try < 3; try++ {
			// The test's pool may hold connections from before a
			// PostgreSQL restart: the first use of each fails.
			trunks, err = store.EnabledTrunks(context.Background(), profile)
		}
		if err != nil {
			// As FreeSWITCH's fetch would fail (PostgreSQL away): the
			// rescan loads nothing new.
			t.Logf("model of %s: %v", srv.Addr(), err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		now := map[string]bool{}
		for _, tr := range trunks {
			srv.DefineGateway(esltest.Gateway{Name: tr.Name, Profile: profile, Register: tr.Register,
				Realm: strconv.FormatInt(tr.Version, 10)})
			defined[tr.Name], now[tr.Name] = profile, true
		}
		for name, p := range defined {
			if p == profile && !now[name] {
				srv.UndefineGateway(name)
				delete(defined, name)
			}
		}
	})
}

// stateDiff compares a node's loaded gateways with the enabled trunks in
// the database; "" when they match.
func stateDiff(t *testing.T, srv *esltest.Server, store *models.Store, names []string) string {
	t.Helper()
	trunks, err := store.EnabledTrunks(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, tr := range trunks {
		want[tr.Name] = strconv.FormatInt(tr.Version, 10)
	}
	var diff []string
	for _, name := range names {
		g, loaded := srv.Gateway(name)
		v, should := want[name]
		switch {
		case loaded != should:
			diff = append(diff, fmt.Sprintf("%s: loaded=%v, in the database=%v", name, loaded, should))
		case loaded && g.Realm != v:
			diff = append(diff, fmt.Sprintf("%s: version %s loaded, %s in the database", name, g.Realm, v))
		}
	}
	return strings.Join(diff, "; ")
}

// killgws counts each gateway's killgw commands in entries, by connection.
func killgws(entries []esltest.Entry) map[string]map[int]int {
	out := map[string]map[int]int{}
	for _, e := range entries {
		if e.Kind != "cmd" || !strings.HasPrefix(e.Text, "api sofia profile ") {
			continue
		}
		f := strings.Fields(e.Text)
		if len(f) == 6 && f[4] == "killgw" {
			if out[f[5]] == nil {
				out[f[5]] = map[int]int{}
			}
			out[f[5]][e.Conn]++
		}
	}
	return out
}

// Three `fsplane serve` processes on one PostgreSQL schema and two
// FreeSWITCH nodes. Only the leader connects to the nodes, and each change
// reaches each node once. Then the leader is killed (SIGKILL) in the middle
// of a burst of changes: another replica takes over, every node ends in
// the state of the database, and a gateway is killed twice only when its
// change was past the old leader's stored cursor (sent, never confirmed).
func TestReplicasOneESLLeader(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts processes")
	}
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	store := modelstest.Open(t, "postgres", modelstest.Options{Keys: kr, NoMigrate: true})
	ctx := context.Background()
	var fss []*esltest.Server
	for range 2 {
		fs := esltest.Start(t, esltest.Options{Password: "s3cret-esl"})
		fsModel(t, fs, store)
		fss = append(fss, fs)
	}
	env := map[string]string{
		"DATABASE_URL":          modelstest.URLOf(t, store),
		"FSPLANE_FERNET_KEYS":   key,
		"FSPLANE_EXTERNAL_IPV4": "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6": "2a01:4f8:140:829d::2",
		"FSPLANE_ESL_NODES":     fss[0].Addr() + "," + fss[1].Addr(),
		"FSPLANE_ESL_PASSWORD":  "s3cret-esl",
	}
	first := startReplica(t, "A", env)
	token := tokenRe.FindString(first.stderr.String())
	if token == "" {
		t.Fatalf("no admin token at first start:\n%s", first.stderr.String())
	}
	replicas := []*replicaProc{first}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, name := range []string{"B", "C"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := startReplica(t, name, env)
			mu.Lock()
			replicas = append(replicas, p)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(replicas) != 3 {
		t.FailNow()
	}

	// Who leads, as every replica tells it.
	leaderOf := func() *replicaProc {
		var found *replicaProc
		for _, p := range replicas {
			select {
			case <-p.exited:
				continue
			default:
			}
			for _, n := range p.nodes(t, token) {
				if n.Replica == p.id && n.Leader == p.id {
					found = p
				}
			}
		}
		return found
	}
	var lead *replicaProc
	waitFor(t, "a leader", func() bool { lead = leaderOf(); return lead != nil })
	for _, fs := range fss {
		if err := fs.Wait(ctxTimeout(t, 30*time.Second), func(s *esltest.Server) bool { return s.Count("api reloadacl") >= 1 }); err != nil {
			t.Fatalf("node %s not synced: %v", fs.Addr(), err)
		}
	}
	for _, p := range replicas {
		for _, n := range p.nodes(t, token) {
			wantState := esl.StateStandby
			if p == lead {
				wantState = n.State // connected, or reconnecting: not standby
				if n.State == esl.StateStandby {
					t.Errorf("%s leads but shows %s as standby", p.name, n.Node)
				}
			}
			if n.State != wantState || n.Leader != lead.id || n.Replica != p.id {
				t.Errorf("%s: node %+v; want state %s, leader %s, replica %s", p.name, n, wantState, lead.id, p.id)
			}
		}
		code, body := do(t, http.MethodGet, p.base+"/readyz", "", "", "")
		if code != http.StatusOK || !strings.Contains(body, lead.id) {
			t.Errorf("%s: /readyz does not name the leader %s: %d %s", p.name, lead.id, code, body)
		}
		_, metrics := do(t, http.MethodGet, p.base+"/metrics", "", "", "")
		want := fmt.Sprintf(`fsplane_leader_leading{replica=%q,task="esl"} %d`, p.id, map[bool]int{true: 1}[p == lead])
		if !strings.Contains(metrics, want) {
			t.Errorf("%s: /metrics lacks %s", p.name, want)
		}
	}

	write := func(via *replicaProc, method, path, body string, want int) {
		t.Helper()
		code, out := do(t, method, via.base+path, token, "application/json", body)
		if code != want {
			t.Fatalf("%s %s via %s: %d %s", method, path, via.name, code, out)
		}
	}
	createTrunk := func(via *replicaProc, name string, n int) {
		write(via, http.MethodPost, "/api/v1/sip/trunks", fmt.Sprintf(
			`{"preset":"1und1","name":%q,"numbers":["+49345566%05d"],"username":"49345566%05d","password":"pw-%s"}`, name, n, n, name),
			http.StatusCreated)
	}
	var names []string
	const n1 = 67 // 3×n1 ≈ 200 changes in the burst, as the issue asks
	// Phase 1, all three up: each change reaches each node exactly once,
	// over the leader's one connection.
	for i := range n1 {
		name := fmt.Sprintf("t%02d", i)
		names = append(names, name)
		createTrunk(replicas[i%3], name, i)
	}
	for i := range n1 {
		write(replicas[(i+1)%3], http.MethodPatch, "/api/v1/sip/trunks/"+names[i], fmt.Sprintf(`{"expire_seconds":%d}`, 1800+i), http.StatusOK)
	}
	converge := func(what string) {
		t.Helper()
		last, err := store.LastChangeID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var diff string
		deadline := time.Now().Add(30 * time.Second)
		for _, fs := range fss {
			for {
				id, _, err := store.ESLCursor(ctx, fs.Addr())
				if err == nil && id >= last {
					if diff = stateDiff(t, fs, store, names); diff == "" {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: node %s: cursor %d of %d; state: %s\n%q", what, fs.Addr(), id, last, diff, fs.Commands())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	converge("phase 1")
	for _, fs := range fss {
		if fs.Auths() != 1 {
			t.Errorf("node %s: %d authentications, want 1 (only the leader connects)", fs.Addr(), fs.Auths())
		}
		for _, name := range names {
			k := killgws(fs.Transcript())[name]
			total := 0
			for _, c := range k {
				total += c
			}
			if total != 1 {
				t.Errorf("node %s: %d × killgw %s for one change, want 1", fs.Addr(), total, name)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Phase 2: a burst of changes through every replica; the leader is
	// killed in its middle, and the rest go through the others.
	startID, err := store.LastChangeID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var followers []*replicaProc
	for _, p := range replicas {
		if p != lead {
			followers = append(followers, p)
		}
	}
	oldConn := map[string]int{} // node → the old leader's connection
	for _, fs := range fss {
		tr := fs.Transcript()
		oldConn[fs.Addr()] = tr[len(tr)-1].Conn
		fs.ResetTranscript()
	}
	var changes []func(via *replicaProc)
	for i := range n1 {
		name := names[i]
		if i < n1/2 {
			changes = append(changes, func(via *replicaProc) {
				write(via, http.MethodPatch, "/api/v1/sip/trunks/"+name, fmt.Sprintf(`{"expire_seconds":%d}`, 2400+i), http.StatusOK)
			})
		} else {
			changes = append(changes, func(via *replicaProc) {
				write(via, http.MethodDelete, "/api/v1/sip/trunks/"+name, "", http.StatusNoContent)
			})
		}
	}
	for i := range 2 * n1 {
		name := fmt.Sprintf("u%02d", i)
		names = append(names, name)
		changes = append(changes, func(via *replicaProc) { createTrunk(via, name, 100+i) })
	}
	// Interleave updates, deletes and creates.
	order := make([]func(*replicaProc), 0, len(changes))
	for i := range n1 {
		order = append(order, changes[i], changes[n1+2*i], changes[n1+2*i+1])
	}
	var killedAt time.Time
	cursorAtKill := map[string]uint64{}
	killed := 0 // killgw commands seen on the first node before the kill's wait
	countKills := func(s *esltest.Server) int {
		n := 0
		for _, byConn := range killgws(s.Transcript()) {
			for _, c := range byConn {
				n += c
			}
		}
		return n
	}
	for i, change := range order {
		if i == 6 {
			// The first changes of the burst are applied and recorded in
			// the cursors: the new leader must not send them again.
			last, err := store.LastChangeID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, fs := range fss {
				waitFor(t, "the first changes applied", func() bool {
					id, _, err := store.ESLCursor(ctx, fs.Addr())
					return err == nil && id >= last
				})
			}
			killed = countKills(fss[0])
		}
		if i == len(order)/2 {
			// Kill it while it works: as soon as a node got a killgw for
			// the changes since (its rescan, and the cursor, still to come).
			if err := fss[0].Wait(ctxTimeout(t, 30*time.Second), func(s *esltest.Server) bool {
				return countKills(s) > killed
			}); err != nil {
				t.Fatalf("the leader sent no killgw for the burst: %v", err)
			}
			lead.kill(t)
			killedAt = time.Now()
			for _, fs := range fss {
				id, _, err := store.ESLCursor(ctx, fs.Addr())
				if err != nil {
					t.Fatal(err)
				}
				cursorAtKill[fs.Addr()] = id
			}
		}
		if killedAt.IsZero() {
			change(replicas[i%3]) // the leader too: it sees its own writes at once
		} else {
			change(followers[i%2])
		}
	}
	var newLead *replicaProc
	waitFor(t, "a new leader", func() bool { newLead = leaderOf(); return newLead != nil && newLead != lead })
	converge("after the failover")

	// Failover figure: the kill to the new leader's first authentication.
	for _, fs := range fss {
		for _, e := range fs.Transcript() {
			if e.Kind == "auth" && e.Conn != oldConn[fs.Addr()] {
				t.Logf("node %s: new leader %s connected %v after the kill", fs.Addr(), newLead.name, e.At.Sub(killedAt).Round(time.Millisecond))
				break
			}
		}
	}

	// Which change each gateway's killgw stands for.
	evs, err := store.ChangesSince(ctx, startID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	changeID := map[string]uint64{}
	for _, ev := range evs {
		if ev.Kind == models.KindTrunk && ev.Op != models.OpCreate {
			if _, dup := changeID[ev.Name]; dup {
				t.Fatalf("trunk %s changed twice in the burst", ev.Name)
			}
			changeID[ev.Name] = ev.ID
		}
	}
	if len(changeID) != n1 {
		t.Fatalf("%d trunks updated or deleted in the burst, want %d", len(changeID), n1)
	}
	for _, fs := range fss {
		k := killgws(fs.Transcript())
		c := cursorAtKill[fs.Addr()]
		redone := 0
		for name, id := range changeID {
			byConn := k[name]
			total, onNew := 0, 0
			for conn, n := range byConn {
				total += n
				if n > 1 {
					t.Errorf("node %s: killgw %s sent %d times on one connection", fs.Addr(), name, n)
				}
				if conn != oldConn[fs.Addr()] {
					onNew += n
				}
			}
			switch {
			case total == 0:
				t.Errorf("node %s: change %d to %s never became a killgw", fs.Addr(), id, name)
			case id <= c && onNew > 0:
				t.Errorf("node %s: killgw %s sent again by the new leader, though change %d was within the stored cursor %d",
					fs.Addr(), name, id, c)
			case total > 1:
				redone++
			}
		}
		t.Logf("node %s: cursor at the kill %d; %d of %d killgw sent by both leaders (past the cursor, unconfirmed)",
			fs.Addr(), c, redone, len(changeID))
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// leaderEntry is a replica's /readyz "leader" check.
func (p *replicaProc) leaderEntry(t *testing.T) (status, detail string) {
	t.Helper()
	_, body := do(t, http.MethodGet, p.base+"/readyz", "", "", "")
	var r struct {
		Checks map[string]struct{ Status, Detail string } `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%s: /readyz: %v: %s", p.name, err, body)
	}
	c := r.Checks["leader"]
	return c.Status, c.Detail
}

func (p *replicaProc) leads(t *testing.T) bool {
	status, detail := p.leaderEntry(t)
	return status == "ok" && strings.Contains(detail, "("+p.id+") leads")
}

// PostgreSQL restarted under two replicas: while it is away nobody drives
// FreeSWITCH and both say why on /readyz; once it is back one of them
// leads again, and a change committed just before the outage and one made
// after it both reach the node.
func TestReplicasSurvivePostgresRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts processes and a PostgreSQL cluster")
	}
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "fsplane")
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := models.Open(ctx, models.Config{DatabaseURL: url, Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	fs := esltest.Start(t, esltest.Options{Password: "s3cret-esl"})
	fsModel(t, fs, store)
	env := map[string]string{
		"DATABASE_URL":            url,
		"FSPLANE_FERNET_KEYS":     key,
		"FSPLANE_EXTERNAL_IPV4":   "46.4.96.105",
		"FSPLANE_EXTERNAL_IPV6":   "2a01:4f8:140:829d::2",
		"FSPLANE_ESL_NODES":       fs.Addr(),
		"FSPLANE_ESL_PASSWORD":    "s3cret-esl",
		"FSPLANE_TOKEN_CACHE_TTL": "10m",
	}
	a := startReplica(t, "A", env)
	token := tokenRe.FindString(a.stderr.String())
	b := startReplica(t, "B", env)
	replicas := []*replicaProc{a, b}
	leaders := func() (n int) {
		for _, p := range replicas {
			if p.leads(t) {
				n++
			}
		}
		return n
	}
	waitFor(t, "one leader", func() bool { return leaders() == 1 })
	write := func(method, path, body string, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, out := do(t, method, b.base+path, token, "application/json", body)
			if code == want {
				return
			}
			if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("%s %s: %d %s", method, path, code, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	names := []string{"before", "after"}
	write(http.MethodPost, "/api/v1/sip/trunks",
		`{"preset":"1und1","name":"before","numbers":["+4934556600001"],"username":"4934556600001","password":"pw-before"}`, http.StatusCreated)
	pg.Stop(t)
	waitFor(t, "nobody leading, both saying why", func() bool {
		for _, p := range replicas {
			if status, _ := p.leaderEntry(t); status != "degraded" {
				return false
			}
		}
		return true
	})
	pg.Start(t)
	waitFor(t, "one leader again", func() bool { return leaders() == 1 })
	write(http.MethodPost, "/api/v1/sip/trunks",
		`{"preset":"1und1","name":"after","numbers":["+4934556600002"],"username":"4934556600002","password":"pw-after"}`, http.StatusCreated)
	// Both trunks loaded, at their current versions, and the cursor past
	// the newest change: the crash made PostgreSQL's sequence skip values
	// that no transaction holds, which the snapshot horizon settles long
	// before GapGrace (60 s) would.
	last, err := store.LastChangeID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		diff := stateDiff(t, fs, store, names)
		id, _, err := store.ESLCursor(context.Background(), fs.Addr())
		if diff == "" && err == nil && id >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node: cursor %d of %d (%v); state: %s\n%q", id, last, err, diff, fs.Commands())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
