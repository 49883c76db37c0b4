package xmlcurl

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/models"
)

// Problem is a stored row that FreeSWITCH does not get (or gets only in
// part) because it cannot be rendered exactly: written past the API's
// validation, or unreadable with the configured keys. The API refuses such
// rows, so a Problem means another writer; it is never silent: a log line,
// fsplane_xmlcurl_unrenderable_rows, a warning on /readyz and render_error
// in the API.
type Problem struct {
	Kind   string // models.KindTrunk, KindExtension, KindProfile
	Name   string // gateway name, user@domain, profile name
	Reason string
}

// problems are the rows known not to render, as last seen: set when a
// render leaves a row out, cleared when it renders again or is deleted.
type problems struct {
	mu    sync.Mutex
	rows  map[[2]string]string
	gauge *prometheus.GaugeVec
}

// tracked are the kinds of row a Problem is about.
var tracked = []string{models.KindTrunk, models.KindExtension, models.KindProfile}

func (p *problems) set(kind, name string, err error) {
	if !slices.Contains(tracked, kind) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rows == nil {
		p.rows = map[[2]string]string{}
	}
	p.rows[[2]string{kind, name}] = err.Error()
	p.updateLocked(kind)
}

func (p *problems) clear(kind, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := [2]string{kind, name}
	if _, ok := p.rows[k]; ok {
		delete(p.rows, k)
		p.updateLocked(kind)
	}
}

func (p *problems) updateLocked(kind string) {
	if p.gauge == nil {
		return
	}
	n := 0
	for k := range p.rows {
		if k[0] == kind {
			n++
		}
	}
	p.gauge.WithLabelValues(kind).Set(float64(n))
}

// onChange forgets a deleted row, and a row renamed away from its name.
func (p *problems) onChange(ev models.ChangeEvent) {
	if ev.OldName != "" && ev.OldName != ev.Name {
		p.clear(ev.Kind, ev.OldName)
	}
	if ev.Op == models.OpDelete {
		p.clear(ev.Kind, ev.Name)
	}
}

func (p *problems) list() []Problem {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Problem, 0, len(p.rows))
	for k, why := range p.rows {
		out = append(out, Problem{Kind: k[0], Name: k[1], Reason: why})
	}
	slices.SortFunc(out, func(a, b Problem) int {
		return strings.Compare(a.Kind+" "+a.Name, b.Kind+" "+b.Name)
	})
	return out
}

// Problems lists the rows currently known not to render.
func (h *Handler) Problems() []Problem { return h.problems.list() }

// ExtensionProblem says why e would not reach FreeSWITCH as stored, or
// "". It renders e as a sip_auth lookup would (a disabled user is
// rendered too: disabling is on purpose, an unrenderable row is not), and
// records or clears the row among the Problems.
func (h *Handler) ExtensionProblem(e *models.Extension) string {
	name := e.UserID + "@" + e.Domain
	if _, err := h.userDocument(e, e.Domain, ""); err != nil {
		h.problems.set(models.KindExtension, name, err)
		return err.Error()
	}
	h.problems.clear(models.KindExtension, name)
	return ""
}

// TrunkProblems says, for each of trunks, why it would not reach
// FreeSWITCH as stored, or ""; err is a database failure only. It reads
// the profiles and provider ranges once for all of them, and records or
// clears each row among the Problems.
func (h *Handler) TrunkProblems(ctx context.Context, trunks []models.Trunk) ([]string, error) {
	out := make([]string, len(trunks))
	if len(trunks) == 0 {
		return out, nil
	}
	profiles, err := h.store.ListProfiles(ctx)
	if err != nil {
		return nil, err
	}
	tls := make(map[string]bool, len(profiles))
	for _, p := range profiles {
		tls[p.Name] = p.TLS
	}
	var acls map[string][]string
	for i := range trunks {
		t := &trunks[i]
		profileTLS, ok := tls[t.Profile]
		if !ok {
			err := fmt.Errorf("%w: profile %q does not exist", ErrIncomplete, t.Profile)
			h.problems.set(models.KindTrunk, t.Name, err)
			out[i] = err.Error()
			continue
		}
		if t.Register && acls == nil {
			ranges, err := h.store.ListRanges(ctx, "")
			if err != nil {
				return nil, err
			}
			acls = h.inlineACLs(ranges, false)
		}
		if _, err := h.gateway(t, profileTLS, acls[t.Provider]); err != nil {
			h.problems.set(models.KindTrunk, t.Name, err)
			out[i] = err.Error()
			continue
		}
		h.problems.clear(models.KindTrunk, t.Name)
	}
	return out, nil
}

// Audit renders every profile, trunk and extension once, so that rows
// that cannot be rendered are known (and shown) before FreeSWITCH asks for
// them. serve runs it at start; it reads the database in pages.
func (h *Handler) Audit(ctx context.Context) error {
	if _, err := h.renderSofia(ctx); err != nil {
		return err
	}
	for off := 0; ; off += 500 {
		rows, _, err := h.store.ListTrunks(ctx, models.TrunkFilter{Page: models.Page{Limit: 500, Offset: off}})
		if err != nil {
			return fmt.Errorf("xmlcurl: audit trunks: %w", err)
		}
		whys, err := h.TrunkProblems(ctx, rows)
		if err != nil {
			return fmt.Errorf("xmlcurl: audit trunks: %w", err)
		}
		for i, why := range whys {
			if why != "" {
				h.log.Warn("xml-curl: stored row cannot be rendered", "kind", models.KindTrunk, "name", rows[i].Name, "reason", why)
			}
		}
		if len(rows) < 500 {
			break
		}
	}
	for off := 0; ; off += 500 {
		rows, _, err := h.store.ListExtensions(ctx, models.ExtensionFilter{Page: models.Page{Limit: 500, Offset: off}})
		if err != nil {
			return fmt.Errorf("xmlcurl: audit extensions: %w", err)
		}
		for i := range rows {
			e := &rows[i]
			if why := h.ExtensionProblem(e); why != "" {
				h.log.Warn("xml-curl: stored row cannot be rendered", "kind", models.KindExtension, "name", e.UserID+"@"+e.Domain, "reason", why)
			}
		}
		if len(rows) < 500 {
			break
		}
	}
	return nil
}
