package registrar_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

// A MESSAGE from one registered client to another's AOR reaches the
// other at the address it registered from (over UDP, and over the TCP
// connection it registered on), with the proxy's Via on top and
// Max-Forwards decremented; the answer comes back without that Via.
func TestProxyMessageBetweenRegisteredClients(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			f := start(t, registrar.Options{})
			bob := f.dial(t, network)
			res := bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5")
			wantCode(t, res, 200)
			alice := f.dial(t, "udp")

			done := make(chan *sip.Request, 1)
			go func() {
				req := bob.ReadRequest(10 * time.Second)
				if req != nil {
					bob.Respond(req, 200, "OK")
				}
				done <- req
			}()
			res = alice.Request("MESSAGE", "sip:1002@"+domain, "1001", domain)
			wantCode(t, res, 200)
			if vias := res.GetHeaders("Via"); len(vias) != 1 || !strings.Contains(vias[0].Value(), alice.Local) {
				t.Fatalf("answer's Vias %v: want only alice's", vias)
			}
			got := <-done
			if got == nil {
				t.Fatal("bob got no MESSAGE")
			}
			if got.Method != sip.MESSAGE || got.Recipient.Host != "127.0.0.1" || !strings.Contains(got.Recipient.String(), bob.Local) {
				t.Fatalf("bob got %s %s: want the MESSAGE at his contact", got.Method, got.Recipient.String())
			}
			vias := got.GetHeaders("Via")
			if len(vias) != 2 || !strings.Contains(vias[1].Value(), alice.Local) || !strings.Contains(vias[0].Value(), "branch=z9hG4bKfsp") {
				t.Fatalf("bob's Vias %v: want the proxy's over alice's", vias)
			}
			if mf := got.MaxForwards(); mf == nil || mf.Val() != 69 {
				t.Fatalf("Max-Forwards %v, want 69", mf)
			}
			if string(got.Body()) != "hello through fsplane" {
				t.Fatalf("body %q", got.Body())
			}
		})
	}
}

func TestProxyRefusals(t *testing.T) {
	f := start(t, registrar.Options{})
	c := f.dial(t, "udp")
	wantCode(t, c.Request("MESSAGE", "sip:9999@"+domain, "1001", domain), 404)
	wantCode(t, c.Request("MESSAGE", "sip:1002@"+domain, "1001", domain), 480)
	wantCode(t, c.Request("MESSAGE", "sip:1002@elsewhere.example", "1001", domain), 404)
	wantCode(t, c.Request("INFO", "sip:"+domain, "1001", domain), 405)
	wantCode(t, c.Request("MESSAGE", "sip:1002@"+domain, "1001", domain, "Proxy-Require: foo"), 420)
	// A request that already went through this proxy is a loop.
	host, port := strings.Split(f.udp, ":")[0], strings.Split(f.udp, ":")[1]
	wantCode(t, c.Request("MESSAGE", "sip:1002@"+domain, "1001", domain,
		"Via: SIP/2.0/UDP "+host+":"+port+";branch=z9hG4bKfsp0123456789"), 482)
}

// An unreachable contact (nothing listens) is tried, then the next one by
// q; when none answers the caller gets a final answer, not silence.
func TestProxyFallsBackToNextContact(t *testing.T) {
	f := start(t, registrar.Options{})
	bob := f.dial(t, "tcp")
	// The higher-q contact is a closed TCP port: the connection fails at
	// once and the proxy goes on to bob's own contact.
	reg := registrartest.Reg{User: "1002", Domain: domain, Contacts: []string{
		"<sip:1002@127.0.0.1:9;transport=tcp>;q=1.0",
		"<sip:1002@" + bob.Local + ";transport=tcp>;q=0.5",
	}}
	wantCode(t, bob.Register(reg, pw1002, "MD5"), 200)
	go func() {
		if req := bob.ReadRequest(10 * time.Second); req != nil {
			bob.Respond(req, 202, "Accepted")
		}
	}()
	alice := f.dial(t, "udp")
	wantCode(t, alice.Request("MESSAGE", "sip:1002@"+domain, "1001", domain), 202)
}

// An INVITE dialog through the proxy: the INVITE reaches bob with the
// proxy's Record-Route; alice's ACK and BYE, routed by that Record-Route,
// reach bob through the proxy; the BYE's 200 comes back.
func TestProxyInviteDialogRecordRoute(t *testing.T) {
	f := start(t, registrar.Options{})
	bob := f.dial(t, "udp")
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	alice := f.dial(t, "udp")

	bobGot := make(chan *sip.Request, 4)
	go func() {
		for i := 0; i < 3; i++ {
			req := bob.ReadRequest(10 * time.Second)
			if req == nil {
				break
			}
			bobGot <- req
			if req.Method != sip.ACK {
				res := sip.NewResponseFromRequest(req, 200, "OK", nil)
				if req.Method == sip.INVITE {
					for _, rr := range req.GetHeaders("Record-Route") {
						res.AppendHeader(sip.HeaderClone(rr))
					}
					res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: "127.0.0.1", Port: portOf(bob.Local)}})
				}
				bob.SendRaw([]byte(res.String()))
			}
		}
		close(bobGot)
	}()
	res := alice.Request("INVITE", "sip:1002@"+domain, "1001", domain)
	wantCode(t, res, 200)
	inv := <-bobGot
	rr := inv.GetHeader("Record-Route")
	if rr == nil || !strings.Contains(rr.Value(), f.udp) || !strings.Contains(rr.Value(), ";lr") {
		t.Fatalf("INVITE's Record-Route %v: want the proxy's, loose", rr)
	}
	if got := res.GetHeader("Record-Route"); got == nil || got.Value() != rr.Value() {
		t.Fatalf("200's Record-Route %v", got)
	}
	// In the dialog: ACK and BYE to bob's contact, routed via the proxy.
	route := "Route: " + rr.Value()
	to := res.To().Value()
	dialog := func(method string, cseq int) string {
		return method + " sip:1002@" + bob.Local + " SIP/2.0\r\nVia: SIP/2.0/UDP " + alice.Local + ";branch=z9hG4bK" + registrartest.Token() + ";rport\r\n" +
			"Max-Forwards: 70\r\n" + route + "\r\nFrom: " + res.From().Value() + "\r\nTo: " + to + "\r\nCall-ID: " + res.CallID().Value() +
			"\r\nCSeq: " + strconv.Itoa(cseq) + " " + method + "\r\nContent-Length: 0\r\n\r\n"
	}
	alice.SendRaw([]byte(dialog("ACK", 1)))
	if ack := <-bobGot; ack == nil || ack.Method != sip.ACK || ack.GetHeader("Route") != nil {
		t.Fatalf("bob got %v: want the ACK with the proxy's Route removed", ack)
	}
	alice.SendRaw([]byte(dialog("BYE", 2)))
	if bye := <-bobGot; bye == nil || bye.Method != sip.BYE || len(bye.GetHeaders("Via")) != 2 {
		t.Fatalf("bob got %v: want the BYE through the proxy", bye)
	}
	if res := alice.Read(5 * time.Second); res == nil || res.StatusCode != 200 || res.CSeq().MethodName != sip.BYE {
		t.Fatalf("BYE answered %v", res)
	}
	// A Route naming the proxy towards a contact it does not hold is no
	// open relay.
	wantCode(t, alice.Request("MESSAGE", "sip:someone@192.0.2.1", "1001", domain, route), 404)
}

func portOf(hostport string) int {
	i := strings.LastIndexByte(hostport, ':')
	n := 0
	for _, c := range hostport[i+1:] {
		n = n*10 + int(c-'0')
	}
	return n
}

// FreeSWITCH reaching a fallback-registered user: the directory's
// dial-string leg (FallbackDialString) sends the INVITE for the AOR with
// the registrar as outbound proxy (a Route naming it); the proxy takes
// the AOR from the Request-URI and forwards to the registered contact.
func TestProxyFromFreeSWITCHFallbackLeg(t *testing.T) {
	f := start(t, registrar.Options{})
	if got := registrar.FallbackDialString("internal", "127.0.0.1:5070"); got != "sofia/internal/sip:${dialed_user}@${dialed_domain};fs_path=<sip:127.0.0.1:5070;lr>" {
		t.Fatalf("FallbackDialString: %q", got)
	}
	bob := f.dial(t, "tcp")
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	got := make(chan *sip.Request, 1)
	go func() {
		req := bob.ReadRequest(10 * time.Second)
		if req != nil {
			bob.Respond(req, 486, "Busy Here")
		}
		got <- req
	}()
	fs := f.dial(t, "udp")
	res := fs.Request("INVITE", "sip:1002@"+domain, "1001", domain, "Route: <sip:"+f.udp+";lr>")
	wantCode(t, res, 486)
	req := <-got
	if req == nil || req.Method != sip.INVITE || req.GetHeader("Route") != nil || !strings.Contains(req.Recipient.String(), bob.Local) {
		t.Fatalf("bob got %v: want the INVITE at his contact, our Route removed", req)
	}
}

// Two replicas on one database: a phone registered at one is reached
// through the other (its bindings are flushed to the table, and a replica
// with no binding of its own for an AOR reads them there).
func TestProxyReachesBindingOfAnotherReplica(t *testing.T) {
	f := start(t, registrar.Options{})
	// Bob's socket takes datagrams from any address: the other replica
	// sends from its own (replicas behind one address would not need it).
	bob := registrartest.DialUnconnected(t, f.udp)
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	g := start(t, registrar.Options{Store: f.store})
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows, err := f.store.Bindings(context.Background(), f.clk.Now())
		if err == nil && len(rows) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("binding not flushed: %v %v", rows, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	go func() {
		if req := bob.ReadRequest(10 * time.Second); req != nil {
			bob.Respond(req, 200, "OK")
		}
	}()
	alice := registrartest.Dial(t, "udp", g.udp)
	wantCode(t, alice.Request("MESSAGE", "sip:1002@"+domain, "1001", domain), 200)
}

// From outside the trusted networks the proxy forwards nothing without
// credentials: every out-of-dialog request gets the same 407, whether its
// AOR exists or not (no enumeration); a served user's Proxy-Authorization
// gets it forwarded, and credentials of one user under another's From are
// refused.
func TestProxyAuthenticatesUntrustedSenders(t *testing.T) {
	f := start(t, registrar.Options{Trusted: registrar.NoTrustedNetworks})
	bob := f.dial(t, "udp")
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	alice := f.dial(t, "udp")

	var challenge *digest.Challenge
	for _, target := range []string{"sip:1002@" + domain, "sip:9999@" + domain} {
		res := alice.Request("MESSAGE", target, "1001", domain)
		wantCode(t, res, 407)
		h := res.GetHeader("Proxy-Authenticate")
		if h == nil {
			t.Fatalf("%s: 407 without Proxy-Authenticate", target)
		}
		ch, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatal(err)
		}
		challenge = ch
	}
	nc := 0 // each use of the nonce counts up, as clients do (and the replay guard wants)
	auth := func(user, password, target string) string {
		ch := *challenge
		ch.Algorithm = "MD5"
		nc++
		cred, err := digest.Digest(&ch, digest.Options{Method: "MESSAGE", URI: target, Username: user, Password: password, Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		return "Proxy-Authorization: " + cred.String()
	}
	done := make(chan *sip.Request, 1)
	go func() {
		req := bob.ReadRequest(10 * time.Second)
		if req != nil {
			bob.Respond(req, 200, "OK")
		}
		done <- req
	}()
	target := "sip:1002@" + domain
	wantCode(t, alice.Request("MESSAGE", target, "1001", domain, auth("1001", pw1001, target)), 200)
	if got := <-done; got == nil || got.Method != sip.MESSAGE {
		t.Fatalf("bob got %v", got)
	}
	// Authenticated, the AOR's existence is the sender's to know.
	wantCode(t, alice.Request("MESSAGE", "sip:9999@"+domain, "1001", domain, auth("1001", pw1001, "sip:9999@"+domain)), 404)
	// 1001's credentials under 1002's name.
	wantCode(t, alice.Request("MESSAGE", target, "1002", domain, auth("1001", pw1001, target)), 403)
	// A wrong password.
	wantCode(t, alice.Request("MESSAGE", target, "1001", domain, auth("1001", "wrong", target)), 403)
}

// An INVITE that only rings is cancelled when Timer C runs out (§16.6 step
// 11), and the caller gets a final answer.
func TestProxyTimerCCancelsARingingBranch(t *testing.T) {
	f := start(t, registrar.Options{TimerC: 300 * time.Millisecond})
	bob := f.dial(t, "udp")
	wantCode(t, bob.Register(registrartest.Reg{User: "1002", Domain: domain}, pw1002, "MD5"), 200)
	alice := f.dial(t, "udp")

	cancelled := make(chan bool, 1)
	go func() {
		inv := bob.ReadRequest(10 * time.Second)
		if inv == nil || inv.Method != sip.INVITE {
			cancelled <- false
			return
		}
		bob.Respond(inv, 180, "Ringing")
		for {
			req := bob.ReadRequest(10 * time.Second)
			if req == nil {
				cancelled <- false
				return
			}
			if req.Method == sip.CANCEL {
				bob.Respond(req, 200, "OK")
				bob.Respond(inv, 487, "Request Terminated")
				cancelled <- true
				return
			}
		}
	}()
	// Request waits for the final answer (it passes the relayed 180 by).
	if res := alice.Request("INVITE", "sip:1002@"+domain, "1001", domain); res.StatusCode < 400 {
		t.Fatalf("final answer %d, want a failure once the ringing branch is given up", res.StatusCode)
	}
	if !<-cancelled {
		t.Fatal("bob's ringing INVITE was never cancelled")
	}
}
