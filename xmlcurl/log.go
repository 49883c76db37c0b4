package xmlcurl

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// logRequest writes the debug line of one answered lookup: what FreeSWITCH
// asked (section, tag/key name and value, user, domain, profile, purpose,
// action) and how it was answered (status, kind, cache result, duration).
// It never holds a credential: the Authorization header and the event
// headers (sip_auth_nonce, sip_auth_response, …) are not read here, and
// neither is the answer (passwords).
//
// Only called when debug is enabled, so the warm path pays one Enabled
// call. req's strings point into a pooled body buffer that is reused once
// ServeHTTP returns; they are copied for handlers that keep records.
func (h *Handler) logRequest(ctx context.Context, req Request, status int, kind, result string, d time.Duration) {
	profile := req.Profile
	if profile == "" {
		// A directory user's lookup names its profile as sip_profile.
		eachPair(req.tail, func(name, raw string) {
			if name == "sip_profile" {
				profile = unescape(raw)
			}
		})
	}
	h.log.LogAttrs(ctx, slog.LevelDebug, "xml-curl request",
		// FreeSWITCH sends no id; a per-process sequence tells the lines
		// of concurrent lookups apart.
		slog.String("request_id", "xc-"+strconv.FormatUint(h.seq.Add(1), 10)),
		slog.String("hostname", strings.Clone(req.Hostname)),
		slog.String("section", strings.Clone(req.Section)),
		slog.String("tag_name", strings.Clone(req.TagName)),
		slog.String("key_name", strings.Clone(req.KeyName)),
		slog.String("key_value", strings.Clone(req.KeyValue)),
		slog.String("user", strings.Clone(req.User)),
		slog.String("domain", strings.Clone(req.Domain)),
		slog.String("profile", strings.Clone(profile)),
		slog.String("purpose", strings.Clone(req.Purpose)),
		slog.String("action", strings.Clone(req.Action)),
		slog.Int("status", status),
		slog.String("kind", kind),
		slog.String("result", result),
		slog.Bool("cache_hit", result == resultHit),
		slog.Duration("duration", d),
	)
}
