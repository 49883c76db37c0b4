package registrar

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/fsplane/fsplane/names"
)

// DefaultAlgorithms are the digest algorithms offered, in this order (RFC
// 8760 §2.4: most preferred first; a client uses the topmost it supports).
var DefaultAlgorithms = []string{"SHA-256", "MD5"}

func (r *Registrar) routes(srv *sipgo.Server) {
	h := r.serve
	srv.OnRegister(h)
	srv.OnOptions(h)
	srv.OnAck(h)
	srv.OnNoRoute(h)
}

// answer is the registrar's whole request path: the checks every request
// passes, then the method's handler. nil means no response (an ACK, or a
// request handled otherwise).
func (r *Registrar) answer(req *sip.Request, tx sip.ServerTransaction) *sip.Response {
	if req.Method == sip.ACK {
		// ACKs to our non-2xx finals are absorbed by the transaction
		// layer; the ACK of a 2xx in a dialog this proxy record-routed is
		// forwarded; anything else is dropped. An ACK is never answered.
		r.forwardAck(req)
		return nil
	}
	if !routable(req) {
		return nil // nowhere to send an answer (§8.1.3.3, §18.2.2)
	}
	if code, reason := precheck(req); code != 0 {
		return r.reply(req, code, reason)
	}
	switch req.Method {
	case sip.REGISTER:
		return r.register(req, tx)
	case sip.OPTIONS:
		return r.options(req, tx)
	}
	return r.proxy(req, tx)
}

// serve adapts answer to sipgo.
func (r *Registrar) serve(req *sip.Request, tx sip.ServerTransaction) {
	res := r.safeAnswer(r.answer, req, tx)
	if res == nil {
		return
	}
	r.m.response(methodLabel(req.Method), res.StatusCode)
	if err := tx.Respond(res); err != nil {
		r.log.Debug("registrar: response not sent", "method", string(req.Method), "code", res.StatusCode, "err", err)
	}
}

// safeAnswer turns a panic on hostile input into a 500, so one message
// never stops the registrar (the stack goes to the log; the message and
// its credentials do not).
func (r *Registrar) safeAnswer(answer func(*sip.Request, sip.ServerTransaction) *sip.Response, req *sip.Request, tx sip.ServerTransaction) (res *sip.Response) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("registrar: request handler panicked", "method", string(req.Method), "panic", p)
			res = r.reply(req, 500, "Server Internal Error")
		}
	}()
	return answer(req, tx)
}

func methodLabel(m sip.RequestMethod) string {
	switch m {
	case sip.REGISTER, sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.OPTIONS, sip.MESSAGE, sip.SUBSCRIBE,
		sip.NOTIFY, sip.INFO, sip.REFER, sip.UPDATE, sip.PRACK, sip.PUBLISH:
		return string(m)
	}
	return "other"
}

func (r *Registrar) reply(req *sip.Request, code int, reason string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.SipVersion = "SIP/2.0" // whatever the request said (a 505 too)
	res.AppendHeader(sip.NewHeader("Server", r.opt.UserAgent))
	return res
}

// routable reports whether the top Via names where an answer goes.
func routable(req *sip.Request) bool {
	v := req.Via()
	return v != nil && v.ProtocolName == "SIP" && v.ProtocolVersion != "" && v.Transport != "" && v.Host != "" &&
		v.Port >= 0 && v.Port <= 65535
}

// wellFormed reports whether a From or To URI is one the answer can
// carry back intact.
func wellFormed(u *sip.Uri) bool {
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return u.Scheme != "" // another scheme: opaque, judged elsewhere
	}
	return u.Host != "" && u.Port >= 0 && u.Port <= 65535
}

// singleHeaders are the headers a request carries at most once.
var singleHeaders = [...]string{"To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"}

// precheck is §8.2 for every request: the mandatory headers present once
// and consistent, the version, the Request-URI's scheme.
func precheck(req *sip.Request) (code int, reason string) {
	if req.To() == nil || req.From() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
		return 400, "Missing Mandatory Header"
	}
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported"
	}
	if !wellFormed(&req.From().Address) || !wellFormed(&req.To().Address) {
		return 400, "Malformed From Or To"
	}
	// One walk over the headers for all six.
	var seen [len(singleHeaders)]bool
	for _, h := range req.Headers() {
		for i, name := range singleHeaders {
			if headerIs(h, name) {
				if seen[i] {
					return 400, "Duplicate " + name + " Header"
				}
				seen[i] = true
				break
			}
		}
	}
	// sipgo upper-cases the request line's method, not CSeq's.
	if !strings.EqualFold(string(req.CSeq().MethodName), string(req.Method)) {
		return 400, "CSeq Method Mismatch"
	}
	if s := req.Recipient.Scheme; s != "sip" && s != "sips" {
		return 416, "Unsupported URI Scheme"
	}
	if req.Recipient.Headers != nil && req.Recipient.Headers.Length() > 0 {
		// RFC 4475 escruri: headers belong in a URI to be dialled, never
		// in a Request-URI.
		return 400, "Headers In Request-URI"
	}
	return 0, ""
}

// unsupported is the 420 for extensions named in the given headers
// (Require for the registrar itself, Proxy-Require when proxying).
func (r *Registrar) unsupported(req *sip.Request, header string) *sip.Response {
	hs := getHeaders(req, header)
	if len(hs) == 0 {
		return nil
	}
	res := r.reply(req, 420, "Bad Extension")
	for _, x := range hs {
		res.AppendHeader(sip.NewHeader("Unsupported", x.Value()))
	}
	return res
}

// register is RFC 3261 §10.3.
func (r *Registrar) register(req *sip.Request, _ sip.ServerTransaction) *sip.Response {
	now := r.now()
	to, from := req.To(), req.From()
	if to.Address.Wildcard || to.Address.Scheme != "sip" && to.Address.Scheme != "sips" {
		return r.reply(req, 416, "Unsupported URI Scheme")
	}
	// Step 1: a domain we hold bindings for.
	domain := strings.ToLower(to.Address.Host)
	if !r.creds.serves(domain) {
		return r.reply(req, 404, "Domain Not Served")
	}
	// Step 2: no extension is supported.
	if res := r.unsupported(req, "Require"); res != nil {
		return res
	}
	// Step 3: authenticate.
	user, res := r.authenticate(req, domain, now)
	if res != nil {
		return res
	}
	// Step 4: only the user itself registers its AOR, and only for itself
	// (no third-party registration, seed 001).
	if user != to.Address.User || from.Address.User != to.Address.User || !strings.EqualFold(from.Address.Host, to.Address.Host) {
		return r.reply(req, 403, "Forbidden")
	}
	// Step 5: the AOR.
	if names.User(to.Address.User) != nil {
		return r.reply(req, 404, "Not Found")
	}
	aor := to.Address.User + "@" + domain
	return r.bind(req, aor, now)
}

// authenticate checks the registrar's digest credentials for domain; it
// returns the authenticated user, or the response to send.
func (r *Registrar) authenticate(req *sip.Request, domain string, now time.Time) (string, *sip.Response) {
	return r.authenticateAs(req, domain, now, wwwAuth)
}

// authKind names the headers and status of a digest exchange: the
// registrar's (401, Authorization) or the proxy's (407,
// Proxy-Authorization).
type authKind struct {
	code                    int
	reason, header, request string
}

var (
	wwwAuth   = authKind{401, "Unauthorized", "WWW-Authenticate", "Authorization"}
	proxyAuth = authKind{407, "Proxy Authentication Required", "Proxy-Authenticate", "Proxy-Authorization"}
)

func (r *Registrar) authenticateAs(req *sip.Request, domain string, now time.Time, kind authKind) (string, *sip.Response) {
	var creds credentials
	found := false
	for _, h := range req.Headers() {
		if !headerIs(h, kind.request) {
			continue
		}
		v := h.Value()
		if !digest.IsDigest(v) {
			continue // another scheme (RFC 4475 regaut01): challenge as if absent
		}
		c, err := parseCredentials(v)
		if err != nil {
			return "", r.reply(req, 400, "Malformed Authorization Header")
		}
		if strings.EqualFold(c.realm, domain) {
			creds, found = c, true
			break
		}
	}
	if !found {
		return "", r.challengeAs(req, domain, now, false, kind)
	}
	alg := strings.ToUpper(creds.algorithm)
	if alg == "" {
		alg = "MD5"
	}
	if !slices.Contains(r.opt.Algorithms, alg) {
		return "", r.challengeAs(req, domain, now, false, kind)
	}
	switch r.checkNonce(creds.nonce, domain, now) {
	case nonceBad:
		return "", r.challengeAs(req, domain, now, false, kind)
	case nonceStale:
		return "", r.challengeAs(req, domain, now, true, kind)
	}
	// Unknown and known users take the same path: a hash of a password
	// nobody has stands in for the missing one.
	c, known := r.creds.lookup(creds.username, domain)
	ha1 := c.ha1(alg)
	if !known {
		ha1 = hashHex(alg, creds.username+":"+domain+":"+string(r.nonceKey))
	}
	if creds.qop != "auth" || creds.username == "" || creds.cnonce == "" || creds.nc <= 0 {
		return "", r.reply(req, 403, "Forbidden")
	}
	if !digestURIMatches(creds.uri, &req.Recipient) && !(req.Method == sip.REGISTER && r.digestURINamesSelf(creds.uri)) {
		// RFC 2617 §3.2.2.5: credentials computed for another URI are
		// not for this request (on the proxy, the Request-URI is the
		// target). A REGISTER's may name this registrar's own address
		// instead of the domain: SIPp's [authentication] does.
		r.m.auth(alg, "rejected")
		return "", r.reply(req, 400, "Authorization URI Does Not Match")
	}
	var buf [2 * sha256.Size]byte
	want := digestResponse(buf[:0], alg, ha1, string(req.Method), &creds)
	if subtle.ConstantTimeCompare(want, []byte(strings.ToLower(creds.response))) != 1 || !known {
		r.m.auth(alg, "rejected")
		return "", r.reply(req, 403, "Forbidden")
	}
	var t txn
	if cid, cseq := req.CallID(), req.CSeq(); cid != nil && cseq != nil {
		t = txn{callID: cid.Value(), cseq: cseq.SeqNo, method: string(cseq.MethodName), req: req}
	}
	if !r.ncs.fresh(creds.nonce, creds.username, uint64(creds.nc), t, now, r.opt.NonceTTL) {
		// A replayed Authorization header (the same nc again).
		r.m.auth(alg, "replayed")
		return "", r.reply(req, 403, "Forbidden")
	}
	r.m.auth(alg, "ok")
	return creds.username, nil
}

func (r *Registrar) challengeAs(req *sip.Request, domain string, now time.Time, stale bool, kind authKind) *sip.Response {
	res := r.reply(req, kind.code, kind.reason)
	nonce := r.newNonce(domain, now)
	for _, alg := range r.opt.Algorithms {
		res.AppendHeader(sip.NewHeader(kind.header, challenge(domain, nonce, alg, stale)))
	}
	return res
}

// parseExpires reads a delta-seconds value; values beyond 2^32-1 are
// clamped (RFC 3261 §20.19), anything else is an error.
func parseExpires(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > math.MaxUint32 {
		return math.MaxUint32, true
	}
	return v, true
}

// parseQ reads a q value (0 to 1, up to three decimals) as thousandths.
func parseQ(s string) (int, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1 || len(s) > 5 {
		return 0, false
	}
	return int(math.Round(f * 1000)), true
}

type contactChange struct {
	b       binding
	expires int64 // requested, after policy; 0 removes
}

// bind is §10.3 steps 6 to 8 for an authorised REGISTER to aor.
func (r *Registrar) bind(req *sip.Request, aor string, now time.Time) *sip.Response {
	// One walk for Expires, User-Agent and the Contacts.
	var (
		expiresHeaders []sip.Header
		uaHeader       sip.Header
		cbuf           [4]*sip.ContactHeader
		contacts       = cbuf[:0]
		wildcard       bool
		badContact     bool
	)
	for _, h := range req.Headers() {
		switch {
		case headerIs(h, "Expires"):
			expiresHeaders = append(expiresHeaders, h)
		case headerIs(h, "User-Agent"):
			if uaHeader == nil {
				uaHeader = h
			}
		case headerIs(h, "Contact"):
			c, ok := h.(*sip.ContactHeader)
			if !ok {
				badContact = true
				continue
			}
			if c.Address.Wildcard {
				wildcard = true
			}
			contacts = append(contacts, c)
		}
	}
	headerExpires := int64(-1)
	if len(expiresHeaders) > 0 {
		v, ok := parseExpires(expiresHeaders[0].Value())
		if !ok || len(expiresHeaders) > 1 {
			return r.reply(req, 400, "Invalid Expires Header")
		}
		headerExpires = v
	}
	if badContact {
		return r.reply(req, 400, "Invalid Contact Header")
	}
	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo
	branch, _ := req.Via().Params.Get("branch")
	transport := strings.ToLower(req.Transport())
	received := req.Source()
	ua := ""
	if uaHeader != nil {
		ua = uaHeader.Value()
		if len(ua) > 255 {
			ua = ua[:255]
		}
	}

	// Step 6: "*" only alone and with Expires: 0.
	if wildcard {
		if len(contacts) != 1 || headerExpires != 0 {
			return r.reply(req, 400, "Invalid Wildcard Contact")
		}
		if _, has := contacts[0].Params.Get("expires"); has {
			return r.reply(req, 400, "Invalid Wildcard Contact")
		}
	}

	var changes []contactChange
	if !wildcard {
		for _, c := range contacts {
			if c.Address.Scheme != "sip" && c.Address.Scheme != "sips" || c.Address.Host == "" {
				return r.reply(req, 400, "Unsupported Contact URI")
			}
			exp := headerExpires
			if v, has := c.Params.Get("expires"); has {
				e, ok := parseExpires(v)
				if !ok {
					return r.reply(req, 400, "Invalid Contact Expires")
				}
				exp = e
			}
			if exp < 0 {
				exp = int64(r.opt.DefaultExpires)
			}
			if exp > 0 && exp < int64(r.opt.MinExpires) {
				res := r.reply(req, 423, "Interval Too Brief")
				res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(r.opt.MinExpires)))
				return res
			}
			exp = min(exp, int64(r.opt.MaxExpires))
			q := 1000
			if v, has := c.Params.Get("q"); has {
				if q, has = parseQ(v); !has {
					return r.reply(req, 400, "Invalid Contact q")
				}
			}
			u := *c.Address.Clone()
			raw := u.String()
			if len(raw) > 1024 {
				return r.reply(req, 400, "Contact URI Too Long")
			}
			changes = append(changes, contactChange{expires: exp, b: binding{uri: u, key: contactKey(&u), raw: raw, q: q,
				expires: now.Add(time.Duration(exp) * time.Second), callID: callID, cseq: cseq, branch: branch, received: received,
				transport: transport, userAgent: ua}})
		}
	}

	// Step 7, under the location lock: check every change, then apply all
	// or none.
	l := r.loc
	l.mu.Lock()
	cur := l.currentLocked(aor, now)
	next := slices.Clone(cur)
	outOfOrder := func(old binding) bool {
		// The same request again (a UDP retransmission answered
		// statelessly) is not out of order: it is processed again.
		retransmission := cseq == old.cseq && branch != "" && branch == old.branch
		return old.callID == callID && cseq <= old.cseq && !retransmission
	}
	if wildcard {
		for _, old := range cur {
			if outOfOrder(old) {
				l.mu.Unlock()
				return r.reply(req, 500, "Out Of Order Request")
			}
		}
		next = nil
	}
	for _, ch := range changes {
		i := slices.IndexFunc(next, func(b binding) bool { return b.key == ch.b.key })
		if i >= 0 {
			if outOfOrder(next[i]) {
				l.mu.Unlock()
				return r.reply(req, 500, "Out Of Order Request")
			}
			if ch.expires == 0 {
				next = slices.Delete(next, i, i+1)
			} else {
				next[i] = ch.b
			}
			continue
		}
		if ch.expires > 0 {
			next = append(next, ch.b)
		}
	}
	if len(next) > len(cur) {
		if len(next) > r.opt.MaxContacts || l.total+len(next)-len(cur) > r.opt.MaxBindings {
			l.mu.Unlock()
			res := r.reply(req, 503, "Too Many Registered Contacts")
			res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(r.opt.RetryAfter)))
			return res
		}
	}
	if len(changes) > 0 || wildcard {
		l.setLockedBy(aor, next, &removal{callID: callID, cseq: cseq})
	}
	l.mu.Unlock()

	// Step 8: every current binding with its remaining time.
	res := r.reply(req, 200, "OK")
	for _, b := range next {
		left := int(b.expires.Sub(now).Round(time.Second) / time.Second)
		ch := &sip.ContactHeader{Address: *b.uri.Clone(), Params: sip.NewParams()}
		ch.Params.Add("expires", strconv.Itoa(max(left, 0)))
		if b.q != 1000 {
			ch.Params.Add("q", strconv.FormatFloat(float64(b.q)/1000, 'f', -1, 64))
		}
		res.AppendHeader(ch)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(http.TimeFormat))) // RFC 3261 §20.17: always GMT
	return res
}

// allow lists the methods the registrar answers itself (the proxy forwards
// any method to an AOR).
const allow = "REGISTER, OPTIONS, ACK"

// options answers an OPTIONS: to the registrar itself (no user part, or a
// served domain's host without user) 200; to an AOR it is proxied.
func (r *Registrar) options(req *sip.Request, tx sip.ServerTransaction) *sip.Response {
	if req.Recipient.User != "" {
		return r.proxy(req, tx)
	}
	if res := r.unsupported(req, "Require"); res != nil {
		return res
	}
	res := r.reply(req, 200, "OK")
	res.AppendHeader(sip.NewHeader("Allow", allow))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	return res
}

// digestURINamesSelf reports whether the digest-uri is this registrar's
// own address (no user).
func (r *Registrar) digestURINamesSelf(digestURI string) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil || u.User != "" {
		return false
	}
	return r.isSelf(u.Host, u.Port)
}

// digestURIMatches reports whether the digest-uri names the Request-URI
// (RFC 2617 §3.2.2.5, RFC 3261 §22.4): scheme, user, host and port as RFC
// 3261 §19.1.4 compares them; parameters are not compared.
func digestURIMatches(digestURI string, ru *sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, ru.Scheme) && u.User == ru.User && strings.EqualFold(u.Host, ru.Host) && u.Port == ru.Port
}
