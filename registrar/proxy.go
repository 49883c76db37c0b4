package registrar

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// branchPrefix marks the branches of the Vias this proxy inserts, for loop
// detection (§16.3 step 4).
const branchPrefix = sip.RFC3261BranchMagicCookie + "fsp"

// proxy forwards a request to an AOR's contacts (§16): highest q first,
// the next one when a contact fails (transport error, timeout, 3xx-5xx).
// 404 for an AOR the registrar does not know, 480 when it has no binding.
// A request whose top Route names this proxy (in a dialog it
// record-routed) goes to its Request-URI.
func (r *Registrar) proxy(req *sip.Request, tx sip.ServerTransaction) *sip.Response {
	if res := r.unsupported(req, "Proxy-Require"); res != nil {
		return res
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return r.reply(req, 483, "Too Many Hops")
	}
	if r.looped(req) {
		return r.reply(req, 482, "Loop Detected")
	}
	routed := r.popOwnRoute(req)
	if !routed && req.Recipient.User == "" {
		// Addressed to the registrar itself: only what it answers.
		res := r.reply(req, 405, "Method Not Allowed")
		res.AppendHeader(sip.NewHeader("Allow", allow))
		return res
	}
	now := r.now()
	var targets []binding
	t, isContact := binding{}, false
	if routed {
		// In a dialog this proxy record-routed, the Request-URI is a
		// contact registered here; otherwise (FreeSWITCH's fs_path) it is
		// an AOR of ours. Nothing else: no open relay.
		t, isContact = r.loc.byContact(&req.Recipient, now)
	}
	if isContact {
		targets = []binding{t}
	} else {
		// Out of a dialog: only a trusted source (FreeSWITCH) or a user of
		// a served domain who authenticates may have anything forwarded,
		// and nobody else learns whether an AOR exists.
		if res := r.admit(req); res != nil {
			return res
		}
		// Another proxy's Route (or none): this proxy only serves its
		// AORs, whatever route the sender planned.
		aor := req.Recipient.User + "@" + strings.ToLower(req.Recipient.Host)
		if !r.creds.known(aor) {
			return r.reply(req, 404, "Not Found")
		}
		if targets = r.loc.lookup(aor, now); len(targets) == 0 {
			// Registered at another replica? Its flushed bindings are in
			// the table (a database read only on this miss).
			targets = r.storedTargets(aor, now)
		}
		if len(targets) == 0 {
			return r.reply(req, 480, "Temporarily Unavailable")
		}
	}
	r.mu.Lock()
	cli := r.cli
	r.mu.Unlock()
	if cli == nil || tx == nil {
		return r.reply(req, 500, "Server Internal Error") // not serving (a test calling the path directly)
	}
	r.forward(cli, req, tx, targets)
	return nil
}

// admit lets a request from a trusted network through, and otherwise asks
// for proxy credentials (407) of a user of the domain the sender claims
// (the From host, a domain this registrar serves); nil means admitted.
func (r *Registrar) admit(req *sip.Request) *sip.Response {
	if src, err := netip.ParseAddrPort(req.Source()); err == nil {
		for _, p := range r.opt.Trusted {
			if p.Contains(src.Addr().Unmap()) {
				return nil
			}
		}
	}
	from := req.From()
	if from == nil {
		return r.reply(req, 400, "Missing From")
	}
	domain := strings.ToLower(from.Address.Host)
	user, res := r.authenticateAs(req, domain, r.now(), proxyAuth)
	if res != nil {
		return res
	}
	if user != from.Address.User {
		return r.reply(req, 403, "Forbidden") // credentials of one user, From of another
	}
	return nil
}

// forwardAck relays the ACK of a 2xx along the dialog's route (§16.11:
// statelessly), when its top Route is this proxy and its Request-URI a
// contact registered here.
func (r *Registrar) forwardAck(req *sip.Request) {
	if !routable(req) || !r.popOwnRoute(req) {
		return
	}
	t, ok := r.loc.byContact(&req.Recipient, r.now())
	r.mu.Lock()
	cli := r.cli
	r.mu.Unlock()
	if !ok || cli == nil {
		return
	}
	out := req.Clone()
	out.SetSource(req.Source())
	r.target(out, t)
	if err := cli.WriteRequest(out, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
		r.log.Debug("registrar: ACK not forwarded", "err", err)
	}
}

// target points out at binding t: its URI, transport and the address it
// registered from; Max-Forwards decremented, this proxy's Via on top.
func (r *Registrar) target(out *sip.Request, t binding) {
	transport := strings.ToUpper(t.transport)
	if transport == "" {
		transport = "UDP"
		if tp, ok := t.uri.UriParams.Get("transport"); ok {
			transport = strings.ToUpper(tp)
		}
	}
	out.SetTransport(transport)
	if transport == "UDP" {
		// From the listening socket: the NAT binding the phone opened
		// by registering is to that port, and REGISTERs answered by the
		// fast path never put the phone's address in sipgo's pool.
		host, port := r.advertised()
		out.Laddr = sip.Addr{IP: net.ParseIP(host), Port: port}
	}
	switch {
	case t.remote && transport != "UDP":
		// Registered over a connection to another replica (or before a
		// restart): that connection is not ours, and its source port
		// accepts nothing. Open one to the address the phone listens on
		// (RFC 3261 §18.2.2); a phone behind NAT is not reached this
		// way, and the next contact is tried.
		out.SetDestination(t.uri.HostPort())
	case t.received != "":
		out.SetDestination(t.received) // where it registered from: NAT, and the TCP connection it opened
	default:
		out.SetDestination(t.uri.HostPort())
	}
	if mf := out.MaxForwards(); mf != nil {
		mf.Dec()
	} else {
		m := sip.MaxForwardsHeader(70)
		out.AppendHeader(&m)
	}
	if v := out.Via(); v != nil && v.Params.Has("rport") {
		if h, p, err := net.SplitHostPort(out.Source()); err == nil {
			v.Params.Add("rport", p)
			v.Params.Add("received", h)
		}
	}
	out.PrependHeader(r.via(transport))
}

// storedTargets are the AOR's bindings in the database, for an AOR this
// replica holds none of; a database error is no binding (480).
func (r *Registrar) storedTargets(aor string, now time.Time) []binding {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := r.store.BindingsOf(ctx, aor, now)
	if err != nil {
		r.log.Warn("registrar: reading stored bindings failed", "aor", aor, "err", err)
		return nil
	}
	var out []binding
	for i := range rows {
		if b, ok := fromRow(&rows[i]); ok {
			out = append(out, b)
		}
	}
	return out
}

// looped reports whether one of the request's Vias is this proxy's (its
// branch prefix and a listen address of ours): §16.3 step 4, without the
// spiral check a proxy that changes the Request-URI would need.
func (r *Registrar) looped(req *sip.Request) bool {
	for _, h := range req.GetHeaders("Via") {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		b, _ := v.Params.Get("branch")
		if strings.HasPrefix(b, branchPrefix) && r.isSelf(v.Host, v.Port) {
			return true
		}
	}
	return false
}

// isSelf reports whether host:port is one of the registrar's listen
// addresses (parsed once, when Run listens).
func (r *Registrar) isSelf(host string, port int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.self {
		if a.port == port && strings.EqualFold(a.host, host) {
			return true
		}
	}
	return false
}

// popOwnRoute removes the top Route when it names this proxy (loose
// routing, §16.4) and says so.
func (r *Registrar) popOwnRoute(req *sip.Request) bool {
	rt := req.Route()
	if rt == nil || !r.isSelf(rt.Address.Host, rt.Address.Port) {
		return false
	}
	req.RemoveHeader("Route") // removes the first one only
	return true
}

// byContact is the unexpired binding whose contact has u's user, host and
// port (a dialog's remote target is the Contact of its 2xx, which may
// differ from the registered one in its parameters).
func (l *location) byContact(u *sip.Uri, now time.Time) (binding, bool) {
	same := func(b *sip.Uri) bool {
		return b.User == u.User && strings.EqualFold(b.Host, u.Host) && b.Port == u.Port
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for aor := range l.byAddr[addrOf(u)] {
		for _, b := range l.aors[aor] {
			if same(&b.uri) && b.expires.After(now) {
				return b, true
			}
		}
	}
	return binding{}, false
}

// forward relays req to the targets in turn and the responses back; it
// returns when the server transaction is answered finally.
func (r *Registrar) forward(cli *sipgo.Client, req *sip.Request, tx sip.ServerTransaction, targets []binding) {
	var best *sip.Response
	cancelled := make(chan struct{})
	if req.IsInvite() {
		var once sync.Once
		cancel := func() { once.Do(func() { close(cancelled) }) }
		// false: the transaction was cancelled (or ended) before the
		// callback was in place; sipgo may still call it too.
		if !tx.OnCancel(func(*sip.Request) { cancel() }) {
			cancel()
		}
	}
	for _, t := range targets {
		res, done := r.forwardOne(cli, req, tx, t, cancelled)
		if done {
			return
		}
		if res != nil && (best == nil || res.StatusCode < best.StatusCode) {
			best = res
		}
		if res != nil && res.StatusCode >= 600 {
			break // a global failure ends the search (§16.7)
		}
		select {
		case <-cancelled:
			return
		default:
		}
	}
	if best == nil {
		_ = tx.Respond(r.reply(req, 408, "Request Timeout"))
		return
	}
	_ = tx.Respond(r.relayed(req, best))
}

// relayed is a downstream response ready to go upstream (§16.7): without
// this proxy's Via, to where the request came from.
func (r *Registrar) relayed(req *sip.Request, res *sip.Response) *sip.Response {
	fwd := res.Clone()
	fwd.RemoveHeader("Via")
	fwd.SetTransport(req.Transport())
	fwd.SetDestination(req.Source())
	return fwd
}

// forwardOne sends one copy of req to target. done is true when the
// server transaction has its final answer (a 2xx relayed, or a CANCEL);
// otherwise res is the branch's final failure (nil on a transport error
// or a timeout).
func (r *Registrar) forwardOne(cli *sipgo.Client, req *sip.Request, tx sip.ServerTransaction, t binding, cancelled <-chan struct{}) (res *sip.Response, done bool) {
	out := req.Clone()
	out.SetSource(req.Source())
	out.Recipient = *t.uri.Clone()
	out.Recipient.Headers = nil // escaped headers are for the phone that dials, not the Request-URI
	r.target(out, t)
	if out.IsInvite() {
		// Our own Record-Route (sipgo's helper reads its listen ports
		// without a lock): the UDP address, loose routing.
		host, port := r.advertised()
		out.PrependHeader(&sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: host, Port: port,
			UriParams: sip.HeaderParams{{K: "transport", V: "udp"}, {K: "lr", V: ""}}}})
	}
	// The branch's own clock (the transaction must not end with a
	// context): 32 s for a first answer, then, once an INVITE rings,
	// Timer C (§16.6 step 11, > 3 min) after which it is cancelled.
	timeout := time.NewTimer(branchTimeout)
	defer timeout.Stop()
	ringing := false
	clTx, err := cli.TransactionRequest(context.Background(), out, func(*sipgo.Client, *sip.Request) error { return nil })
	if err != nil {
		r.log.Debug("registrar: forwarding failed", "to", t.received, "err", err)
		return nil, false
	}
	defer clTx.Terminate()
	for {
		select {
		case res, more := <-clTx.Responses():
			if !more {
				return nil, false
			}
			if res.StatusCode == 100 {
				continue // hop by hop
			}
			if res.StatusCode < 200 && out.IsInvite() {
				ringing = true
				timeout.Reset(r.opt.TimerC) // each provisional restarts Timer C
			}
			if res.StatusCode < 300 {
				_ = tx.Respond(r.relayed(req, res))
				if res.StatusCode >= 200 {
					return res, true
				}
				continue
			}
			return res, false
		case <-cancelled:
			r.cancel(cli, out)
			return nil, true
		case <-clTx.Done():
			return nil, false
		case <-timeout.C:
			if ringing {
				r.cancel(cli, out) // Timer C: give up on a phone that only rings
			}
			return nil, false
		}
	}
}

// branchTimeout is how long a forwarded request may go without any
// answer: 64*T1, as a client transaction's Timer B or F.
const branchTimeout = 32 * time.Second

// via is this proxy's Via for an outgoing request (the transport layer
// writes the real sent-by).
func (r *Registrar) via(transport string) *sip.ViaHeader {
	host, port := r.advertised()
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: transport, Host: host, Port: port, Params: sip.NewParams()}
	v.Params.Add("branch", branchPrefix+sip.GenerateBranchN(12)[len(sip.RFC3261BranchMagicCookie):])
	return v
}

// advertised is the host and port this proxy puts in Via and
// Record-Route: the UDP listen address.
func (r *Registrar) advertised() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.self) == 0 {
		return "127.0.0.1", 5070
	}
	return r.self[0].host, r.self[0].port // the UDP one
}

// cancel sends a CANCEL for the forwarded INVITE out (§16.10).
func (r *Registrar) cancel(cli *sipgo.Client, out *sip.Request) {
	c := sip.NewRequest(sip.CANCEL, *out.Recipient.Clone())
	c.AppendHeader(out.Via().Clone())
	for _, name := range []string{"From", "To", "Call-ID", "Max-Forwards"} {
		if h := out.GetHeader(name); h != nil {
			c.AppendHeader(sip.HeaderClone(h))
		}
	}
	c.AppendHeader(&sip.CSeqHeader{SeqNo: out.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetTransport(out.Transport())
	c.SetDestination(out.Destination())
	c.Laddr = out.Laddr
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if ctx2, err := cli.TransactionRequest(ctx, c, func(*sipgo.Client, *sip.Request) error { return nil }); err == nil {
		select {
		case <-ctx2.Responses():
		case <-ctx.Done():
		}
		ctx2.Terminate()
	}
}

// FallbackDialString is the FreeSWITCH dial-string leg that reaches a user
// registered here: the user's AOR on profile, sent to the registrar at
// addr (host:port) as its outbound proxy (fs_path). xml-curl appends it
// to the directory's dial-string after "|", so it is tried when
// FreeSWITCH has no registration of its own for the user.
func FallbackDialString(profile, addr string) string {
	return "sofia/" + profile + "/sip:${dialed_user}@${dialed_domain};fs_path=<sip:" + addr + ";lr>"
}
