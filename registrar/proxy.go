package registrar

import (
	"github.com/emiago/sipgo/sip"
)

// proxy forwards a request to an AOR's contacts (§16). Until forwarding is
// built: 404 for an unknown AOR, 480 when it has no binding, 501 otherwise.
func (r *Registrar) proxy(req *sip.Request, tx sip.ServerTransaction) *sip.Response {
	if code, reason := checkMandatory(req); code != 0 {
		return r.reply(req, code, reason)
	}
	if req.Method == sip.ACK {
		return nil
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
