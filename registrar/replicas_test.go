package registrar_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5"

	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

// twoReplicas runs registrars A and B on one PostgreSQL schema, each with
// a store and a listener of its own (as two `fsplane serve` processes),
// sharing one clock (each fixture's clk); flush is their FlushInterval.
func twoReplicas(t *testing.T, flush time.Duration) (a, b *fixture) {
	t.Helper()
	return twoReplicasDeferring(t, flush, -1)
}

// twoReplicasDeferring is twoReplicas with RefreshWriteDelay deferral.
func twoReplicasDeferring(t *testing.T, flush, deferral time.Duration) (a, b *fixture) {
	t.Helper()
	sa := modelstest.Open(t, "postgres", modelstest.Options{})
	seed(t, sa)
	sb := modelstest.Reopen(t, sa, modelstest.Options{})
	clk := &clock{t: time.Now().UTC()}
	opt := func(s *models.Store, id string) registrar.Options {
		url := modelstest.URLOf(t, s)
		return registrar.Options{Store: s, Now: clk.Now, FlushInterval: flush, ReplicaID: id, RefreshWriteDelay: deferral,
			Subscribe: func(ctx context.Context, notify func(string), connected func()) error {
				return events.ListenChannel(ctx, url, models.BindingsChannel, notify, connected, nil)
			}}
	}
	a = start(t, opt(sa, "replica-a"))
	b = start(t, opt(sb, "replica-b"))
	a.clk, b.clk = clk, clk
	return a, b
}

// eventually polls cond until it holds, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contactsIn(bs []registrar.Binding, aor string) []string {
	var out []string
	for _, b := range bs {
		if b.AOR == aor {
			out = append(out, b.Contact)
		}
	}
	slices.Sort(out)
	return out
}

// A phone registered at replica A is known to replica B: listed there,
// reached through B's proxy from B's memory (with the table emptied
// behind B's back, so that no database read on a miss can be what found
// it); unregistered through B, it is gone at A and in the table.
func TestReplicasShareBindings(t *testing.T) {
	a, b := twoReplicas(t, 10*time.Millisecond)
	const aor = "1002@" + domain
	// Bob's socket takes datagrams from any address: B sends from its own.
	bob := registrartest.DialUnconnected(t, a.udp)
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	contact := "sip:1002@" + bob.Local + ";transport=udp" // as the client sends it
	eventually(t, "B lists A's binding", func() bool { return slices.Equal(contactsIn(b.reg.List(), aor), []string{contact}) })
	if got := b.reg.List()[0]; got.Received != bob.Local || got.Transport != "udp" {
		t.Fatalf("B lists %+v", got)
	}

	// B's index answers, not the table: it is emptied (B's miss path would
	// find nothing there).
	if err := b.store.DB().Exec("DELETE FROM sip_bindings").Error; err != nil {
		t.Fatal(err)
	}
	go func() {
		if req := bob.ReadRequest(10 * time.Second); req != nil {
			bob.Respond(req, 200, "OK")
		}
	}()
	alice := registrartest.Dial(t, "udp", b.udp)
	wantCode(t, alice.Request("MESSAGE", "sip:1002@"+domain, "1001", domain), 200)

	// Written again (a re-registration at A), then unregistered at B.
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	eventually(t, "A's re-registration stored", func() bool {
		rows, err := b.store.BindingsOf(context.Background(), aor, time.Now())
		return err == nil && len(rows) == 1
	})
	eventually(t, "B sees the re-registration", func() bool { return len(contactsIn(b.reg.List(), aor)) == 1 })
	if err := b.reg.Unregister(aor, contact); err != nil {
		t.Fatal(err)
	}
	// Unregister returns once the removal is written.
	if rows, err := a.store.BindingsOf(context.Background(), aor, time.Now()); err != nil || len(rows) != 0 {
		t.Fatalf("after B's Unregister the table holds %+v (%v)", rows, err)
	}
	eventually(t, "A drops the binding B unregistered", func() bool { return len(a.reg.List()) == 0 && a.reg.Count() == 0 })
	wantCode(t, registrartest.Dial(t, "udp", a.udp).Request("MESSAGE", "sip:1002@"+domain, "1001", domain), 480)
}

// Two contacts of one AOR registered at once at A and at B, each replica
// unaware of the other's when it writes: both survive, in the table and
// in both indexes. A later unregistration of one at A leaves the other.
func TestReplicasMergeContactsOfOneAOR(t *testing.T) {
	// Flushes only when asked: each replica writes with a stale view.
	a, b := twoReplicas(t, time.Hour)
	const aor = "1002@" + domain
	p1 := registrartest.Dial(t, "udp", a.udp)
	p2 := registrartest.Dial(t, "udp", b.udp)
	wantCode(t, p1.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	wantCode(t, p2.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	if n := len(contactsIn(b.reg.List(), aor)); n != 1 {
		t.Fatalf("B knows %d contacts before any flush, want its own", n)
	}
	if err := a.reg.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.reg.Flush(); err != nil {
		t.Fatal(err)
	}
	c1, c2 := "sip:1002@"+p1.Local+";transport=udp", "sip:1002@"+p2.Local+";transport=udp"
	want := []string{c1, c2}
	slices.Sort(want)
	rows, err := a.store.BindingsOf(context.Background(), aor, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, r := range rows {
		stored = append(stored, r.Contact)
	}
	slices.Sort(stored)
	if !slices.Equal(stored, want) {
		t.Fatalf("stored %v, want %v", stored, want)
	}
	eventually(t, "both replicas know both contacts", func() bool {
		return slices.Equal(contactsIn(a.reg.List(), aor), want) && slices.Equal(contactsIn(b.reg.List(), aor), want)
	})
	if err := a.reg.Unregister(aor, c2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B drops the contact A unregistered, keeps its own", func() bool {
		return slices.Equal(contactsIn(b.reg.List(), aor), []string{c1})
	})
}

// A phone that registered over TCP at A is reached from B over a
// connection B opens to the address in its Contact (B cannot use A's
// connection); A itself still uses the phone's own connection.
func TestReplicasReachTCPContactOfAnotherReplica(t *testing.T) {
	a, b := twoReplicas(t, 10*time.Millisecond)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bob := registrartest.Dial(t, "tcp", a.tcp)
	contact := "<sip:1002@" + ln.Addr().String() + ";transport=tcp>"
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain, Contacts: []string{contact}}, pw1002, "MD5"), 200)
	eventually(t, "B knows the TCP binding", func() bool { return len(b.reg.List()) == 1 })

	got := make(chan *sip.Request, 1)
	go func() {
		defer close(got)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c := registrartest.FromConn(t, conn, "TCP")
		if req := c.ReadRequest(10 * time.Second); req != nil {
			c.Respond(req, 200, "OK")
			got <- req
		}
	}()
	alice := registrartest.Dial(t, "udp", b.udp)
	wantCode(t, alice.Request("MESSAGE", "sip:1002@"+domain, "1001", domain), 200)
	req := <-got
	if req == nil || !strings.Contains(req.Recipient.String(), ln.Addr().String()) {
		t.Fatalf("the phone's listener got %v", req)
	}

	// Through A, the request takes the phone's registration connection.
	go func() {
		if req := bob.ReadRequest(10 * time.Second); req != nil {
			bob.Respond(req, 202, "Accepted")
		}
	}()
	wantCode(t, registrartest.Dial(t, "udp", a.udp).Request("MESSAGE", "sip:1002@"+domain, "1001", domain), 202)
}

// A phone registered at A (Call-ID X, not yet written: A's flush is late)
// reboots and registers the same contact at B with a new Call-ID: A's late
// flush of X does not overwrite B's newer binding in the table, and A
// takes B's binding over rather than keeping its stale one.
func TestReplicasLateFlushLosesToNewerCallID(t *testing.T) {
	a, b := twoReplicas(t, time.Hour)
	const aor = "1002@" + domain
	old := registrartest.Dial(t, "udp", a.udp)
	rebooted := registrartest.Dial(t, "udp", b.udp)
	contact := "sip:1002@192.0.2.7:5060"
	reg := registrartest.Reg{User: "1002", Domain: domain, Contacts: []string{"<" + contact + ">"}}
	wantCode(t, old.Register(reg, pw1002, "MD5"), 200)
	a.clk.Add(time.Second) // the clock both replicas share
	wantCode(t, rebooted.Register(reg, pw1002, "MD5"), 200)
	if err := b.reg.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.reg.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := a.store.BindingsOf(context.Background(), aor, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].CallID != rebooted.CallID || rows[0].Received != rebooted.Local {
		t.Fatalf("stored %+v, want the rebooted phone's (Call-ID %s from %s)", rows, rebooted.CallID, rebooted.Local)
	}
	eventually(t, "A takes the rebooted phone's binding", func() bool {
		l := a.reg.List()
		return len(l) == 1 && l[0].Received == rebooted.Local
	})
	if l := b.reg.List(); len(l) != 1 || l[0].Received != rebooted.Local {
		t.Fatalf("B lists %+v", l)
	}
}

// Unregister says when its removal is not in the database (which the other
// replicas read): the write failed, or did not end in time (here: the
// table is locked). The removal is retried and lands after all.
func TestUnregisterNotWritten(t *testing.T) {
	s := modelstest.Open(t, "postgres", modelstest.Options{})
	seed(t, s)
	f := start(t, registrar.Options{Store: s, FlushInterval: 10 * time.Millisecond})
	f.reg.SetUnregisterWait(300 * time.Millisecond)
	const aor = "1002@" + domain
	ctx := context.Background()
	stored := func() int {
		rows, err := s.BindingsOf(ctx, aor, f.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	register := func(c *registrartest.Client) string {
		wantCode(t, c.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
		eventually(t, "the binding is written", func() bool { return stored() == 1 })
		return "sip:1002@" + c.Local + ";transport=udp"
	}

	// A write that fails.
	contact := register(registrartest.Dial(t, "udp", f.udp))
	if err := s.DB().Exec(`CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Exec(`CREATE TRIGGER refuse_delete BEFORE DELETE ON sip_bindings FOR EACH ROW EXECUTE FUNCTION refuse_delete()`).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Unregister(aor, contact); !errors.Is(err, registrar.ErrNotWritten) {
		t.Fatalf("Unregister with failing writes: %v, want ErrNotWritten", err)
	}
	if stored() != 1 || f.reg.Count() != 0 {
		t.Fatalf("%d rows, %d bindings in memory", stored(), f.reg.Count())
	}
	if err := s.DB().Exec(`DROP TRIGGER refuse_delete ON sip_bindings`).Error; err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removal is written on a retry", func() bool { return stored() == 0 })

	// A write that does not end in time.
	contact = register(registrartest.Dial(t, "udp", f.udp))
	lock, err := pgx.Connect(ctx, modelstest.URLOf(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE sip_bindings IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	err = f.reg.Unregister(aor, contact)
	if rerr := tx.Rollback(ctx); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, registrar.ErrNotWritten) {
		t.Fatalf("Unregister with the table locked: %v, want ErrNotWritten", err)
	}
	eventually(t, "the removal is written once the lock goes", func() bool { return stored() == 0 })
}

// A refresh deferred at A does not bring back a contact B removed in the
// meantime: A's read-back of B's removal drops it, and A's writes after
// the delay leave the table empty.
func TestReplicasDeferredRefreshLosesToRemoval(t *testing.T) {
	a, b := twoReplicasDeferring(t, 10*time.Millisecond, 30*time.Second)
	const aor = "1002@" + domain
	bob := registrartest.Dial(t, "udp", a.udp)
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	contact := "sip:1002@" + bob.Local + ";transport=udp"
	eventually(t, "B lists A's binding", func() bool { return slices.Equal(contactsIn(b.reg.List(), aor), []string{contact}) })
	// Renewed at A: deferred, nothing written.
	a.clk.Add(5 * time.Second)
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	if err := b.reg.Unregister(aor, contact); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A drops the binding B removed", func() bool { return len(a.reg.List()) == 0 })
	a.clk.Add(time.Minute) // past the deferral
	if err := a.reg.Flush(); err != nil {
		t.Fatal(err)
	}
	if rows, err := a.store.BindingsOf(context.Background(), aor, a.clk.Now()); err != nil || len(rows) != 0 {
		t.Fatalf("A's deferred refresh brought the removed contact back: %+v (%v)", rows, err)
	}
}
