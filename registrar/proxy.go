package registrar

import (
	"github.com/emiago/sipgo/sip"
)

// proxy forwards a request to an AOR's contacts (§16). Until forwarding is
// built: 404 for an unknown AOR, 480 when it has no binding, 501 otherwise.
func (r *Registrar) proxy(req *sip.Request, tx sip.ServerTransaction) *sip.Response {
	if req.Recipient.User == "" {
		// Addressed to the registrar itself: only what it answers.
		res := r.reply(req, 405, "Method Not Allowed")
		res.AppendHeader(sip.NewHeader("Allow", allow))
		return res
	}
	if res := r.unsupported(req, "Proxy-Require"); res != nil {
		return res
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return r.reply(req, 483, "Too Many Hops")
	}
	aor := req.Recipient.User + "@" + req.Recipient.Host
	if !r.creds.known(aor) {
		return r.reply(req, 404, "Not Found")
	}
	if len(r.loc.lookup(aor, r.now())) == 0 {
		return r.reply(req, 480, "Temporarily Unavailable")
	}
	return r.reply(req, 501, "Not Implemented")
}
