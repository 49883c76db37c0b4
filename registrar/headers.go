package registrar

import "github.com/emiago/sipgo/sip"

// headerIs reports whether a header's name is name, compared as sipgo's
// GetHeaders compares (ASCII case folding), without its allocation of a
// lower-cased copy per header and call.
func headerIs(h sip.Header, name string) bool {
	n := h.Name()
	if len(n) != len(name) {
		return false
	}
	for i := 0; i < len(n); i++ {
		a, b := n[i], name[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// getHeaders is req.GetHeaders(name) without allocating when there is
// none.
func getHeaders(req *sip.Request, name string) []sip.Header {
	var out []sip.Header
	for _, h := range req.Headers() {
		if headerIs(h, name) {
			out = append(out, h)
		}
	}
	return out
}
