package registrar

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// newUA builds the sipgo user agent: a parser with fsplane's stricter
// Contact rule, and layer loggers that never write a SIP message (it may
// carry credentials: sipgo logs unparseable messages whole).
func (r *Registrar) newUA() (*sipgo.UserAgent, error) {
	quiet := slog.New(&redactHandler{h: r.log.Handler()})
	return sipgo.NewUA(
		sipgo.WithUserAgent(r.opt.UserAgent),
		sipgo.WithUserAgentParser(newParser()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
	)
}

// newParser is sipgo's parser with fsplane's stricter Contact rule.
func newParser() *sip.Parser {
	// DefaultHeadersParser is sipgo's shared map: change a copy.
	parsers := maps.Clone(sip.DefaultHeadersParser())
	for _, name := range []string{"contact", "m"} {
		parsers[name] = strictContact(parsers[name])
	}
	for _, name := range []string{"from", "f", "to", "t"} {
		parsers[name] = swsParams(parsers[name])
	}
	return sip.NewParser(sip.WithHeadersParsers(parsers))
}

var errContactForm = errors.New("a Contact URI with headers or a comma must be enclosed in <> (RFC 3261 §20.10)")

// strictContact refuses a Contact in addr-spec form whose URI carries
// headers ("?"): RFC 4475 regbadct; sipgo would read it like regescrt's
// bracketed form. The message is then unparseable and dropped.
func strictContact(next sip.HeaderParser) sip.HeaderParser {
	return func(name []byte, value string) (sip.Header, error) {
		if !strings.Contains(value, "<") && strings.Contains(value, "?") {
			return nil, errContactForm
		}
		return next(name, value)
	}
}

// redactHandler drops sipgo's records below Warn and replaces any
// attribute that holds a SIP message (several lines) with a marker.
type redactHandler struct {
	h slog.Handler
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.h.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redact(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func redact(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redactText(v.String()))
	case slog.KindAny:
		switch x := v.Any().(type) {
		case *sip.Request, *sip.Response, sip.Message, []byte:
			return slog.String(a.Key, "[SIP message withheld]")
		case error:
			// sipgo's parse errors quote the header line they failed on,
			// which may be an Authorization.
			return slog.String(a.Key, redactText(x.Error()))
		}
	case slog.KindGroup:
		var as []any
		for _, g := range v.Group() {
			as = append(as, redact(g))
		}
		return slog.Group(a.Key, as...)
	}
	return a
}

// redactText withholds a whole SIP message (several lines) or anything
// digest-like, and cuts quoted text (a header line in a parse error).
func redactText(s string) string {
	switch {
	case strings.ContainsAny(s, "\r\n") || strings.Contains(strings.ToLower(s), "digest "):
		return "[SIP message withheld]"
	case strings.ContainsAny(s, "\"'`"):
		return s[:strings.IndexAny(s, "\"'`")] + "[quoted text withheld]"
	}
	return s
}

func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redact(a)
	}
	return &redactHandler{h: h.h.WithAttrs(red)}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: h.h.WithGroup(name)}
}
