package registrar

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// swsParams reads the parameters of a From or To header as RFC 3261's
// grammar does: SEMI and EQUAL may be surrounded by whitespace (SWS, §25.1),
// so "; tag = 98asjd8" is the parameter tag with value 98asjd8 (RFC 4475
// wsinv). sipgo keeps the whitespace in the names and values, and then
// finds no From tag, which an RFC 2543 transaction (no magic cookie in the
// branch) is matched by: it would answer 400 itself.
func swsParams(next sip.HeaderParser) sip.HeaderParser {
	return func(name []byte, value string) (sip.Header, error) {
		h, err := next(name, value)
		if err != nil {
			return h, err
		}
		switch h := h.(type) {
		case *sip.FromHeader:
			h.Params = trimParams(h.Params)
		case *sip.ToHeader:
			h.Params = trimParams(h.Params)
		}
		return h, nil
	}
}

// trimParams returns ps without whitespace around names and values (and
// without the empty name the whitespace before a ";" reads as); ps itself
// when there is none, without allocating.
func trimParams(ps sip.HeaderParams) sip.HeaderParams {
	spaced := false
	for _, kv := range ps {
		if kv.K != strings.TrimSpace(kv.K) || kv.V != strings.TrimSpace(kv.V) || kv.K == "" {
			spaced = true
			break
		}
	}
	if !spaced {
		return ps
	}
	out := make(sip.HeaderParams, 0, len(ps))
	for _, kv := range ps {
		k, v := strings.TrimSpace(kv.K), strings.TrimSpace(kv.V)
		if k == "" && v == "" {
			continue
		}
		out.Add(k, v)
	}
	return out
}
