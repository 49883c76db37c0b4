package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/providers"
)

// trunk and warning are the API's: the console reads its answers.
type (
	trunk   = api.TrunkOut
	warning = api.Warning
)

// gwCell is one gateway's state on one node, as a table cell shows it.
// gwCell is a gateway's state on one node, as the page shows it and as
// the data of a "gateway" live event.
type gwCell struct {
	Trunk  string `json:"trunk"`
	Node   string `json:"node"`
	State  string `json:"state"`
	Detail string `json:"detail"`
	Class  string `json:"class"` // ok, warn, bad
	// Calls is "N inbound / N outbound" (with the failed ones), "" while
	// FreeSWITCH has not told.
	Calls string `json:"calls"`
	// Register is the last REGISTER reply FreeSWITCH reported ("last
	// REGISTER: 403 Forbidden"), "" when none was seen.
	Register string `json:"register"`
	// RegisterFailed: that reply was not a success.
	RegisterFailed bool `json:"register_failed"`
}

func cellOf(gs esl.GatewayStatus) gwCell {
	c := gwCell{Trunk: gs.Gateway, Node: gs.Node, State: gs.State, Detail: gs.Detail}
	if k := gs.Calls; k != nil {
		c.Calls = fmt.Sprintf("%d inbound / %d outbound", k.In, k.Out)
		if k.FailedIn > 0 || k.FailedOut > 0 {
			c.Calls += fmt.Sprintf(" (failed: %d / %d)", k.FailedIn, k.FailedOut)
		}
	}
	if lr := gs.LastRegister; lr != nil {
		c.Register = strings.TrimSpace(fmt.Sprintf("last REGISTER: %d %s", lr.Status, lr.Phrase))
		c.RegisterFailed = lr.Status >= 300
	}
	switch {
	case gs.Healthy:
		c.Class = "ok"
		if gs.State == "NOREG" && !gs.Register {
			c.State = "NOREG (IP auth)"
		}
	case gs.State == "TRYING" || gs.State == "REGISTER" || gs.State == "UNREGED" || gs.State == "UNREGISTER":
		c.Class = "warn"
	default:
		c.Class = "bad"
	}
	return c
}

type trunkRow struct {
	trunk
	Gateways []gwCell
}

type trunksData struct {
	Rows    []trunkRow
	Total   int64
	Presets []providers.Preset
	HasESL  bool
}

func (c *Console) trunksPage(w http.ResponseWriter, r *request) {
	var list struct {
		Items []trunk `json:"items"`
		Total int64   `json:"total"`
	}
	if c.get(w, r, "/api/v1/sip/trunks?limit=1000", &list) {
		return
	}
	d := trunksData{Total: list.Total, Presets: providers.Builtin(), HasESL: c.opt.ESL != nil}
	d.Rows = make([]trunkRow, len(list.Items))
	for i, t := range list.Items {
		d.Rows[i].trunk = t
	}
	c.gatewayCells(r.Context(), d.Rows)
	c.page(w, r, http.StatusOK, "trunks.html", "Trunks", "trunks", d)
}

// gatewayCells asks ESL for every trunk's gateway state, a few at a time
// and within a bound, so a slow node delays the page by seconds at most.
func (c *Console) gatewayCells(ctx context.Context, rows []trunkRow) {
	if c.opt.ESL == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			t := rows[i].trunk
			gws, _ := c.opt.ESL.GatewayStatus(ctx, models.Trunk{Name: t.Name, Register: t.Register, Enabled: t.Enabled,
				PingSeconds: t.PingSeconds, Hostnames: t.Hostnames})
			for _, gs := range gws {
				rows[i].Gateways = append(rows[i].Gateways, cellOf(gs))
			}
		}()
	}
	wg.Wait()
}

// presetFor returns the preset a form is for; unknown names get a form
// with every field, and the API names the mistake.
func presetFor(name string) (providers.Preset, bool) {
	p, err := providers.ByName(name)
	if err != nil {
		return providers.Preset{Name: name, Title: name, NeedsCredentials: true}, false
	}
	return p, true
}

// formView is a create or edit form: the values to show again, and the
// API's errors and warnings by field.
type formView struct {
	Preset providers.Preset
	Trunk  trunk // edit only
	Values map[string]string
	Fields map[string]string
	Other  []string // errors for fields the form does not show
	// Warnings are the API's findings that did not stop the last write,
	// by field; OtherWarnings those for fields the form does not show.
	Warnings      map[string]string
	OtherWarnings []string
	// Profiles are the sofia profiles a trunk may be on (edit only).
	Profiles []string
	Error    string
	Presets  []providers.Preset
}

var createFields = map[string]bool{"preset": true, "name": true, "numbers": true, "description": true, "username": true, "password": true}

func (c *Console) newTrunkPage(w http.ResponseWriter, r *request) {
	name := r.URL.Query().Get("preset")
	f := formView{Presets: providers.Builtin(), Values: map[string]string{}}
	if name != "" {
		f.Preset, _ = presetFor(name)
	}
	c.page(w, r, http.StatusOK, "trunk_new.html", "New trunk", "trunks", f)
}

// splitList reads a list field: one entry per line or comma; blank
// entries are no entries.
func splitList(s string) []string {
	out := []string{}
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if v := strings.TrimSpace(line); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (c *Console) createTrunk(w http.ResponseWriter, r *request) {
	form := r.PostForm
	body := map[string]any{"preset": form.Get("preset"), "name": form.Get("name")}
	if v := form.Get("numbers"); strings.TrimSpace(v) != "" {
		body["numbers"] = splitList(v)
	}
	for _, k := range []string{"description", "username", "password"} {
		if v := form.Get(k); v != "" {
			body[k] = v
		}
	}
	res, err := c.call(r, http.MethodPost, "/api/v1/sip/trunks", body)
	if err != nil {
		c.errorPage(w, r.s, http.StatusInternalServerError, "The request could not be made.")
		return
	}
	if res.Code == http.StatusCreated {
		var out struct {
			trunk
			Warnings []warning `json:"warnings"`
		}
		_ = res.decode(&out)
		c.afterWrite(w, r, out.trunk, "created", out.Warnings)
		return
	}
	if res.Code == http.StatusUnauthorized {
		c.apiFailure(w, r, res)
		return
	}
	p, _ := presetFor(form.Get("preset"))
	f := formView{Preset: p, Presets: providers.Builtin(), Values: map[string]string{}}
	for _, k := range []string{"name", "numbers", "description", "username"} {
		f.Values[k] = form.Get(k) // never the password
	}
	f.setProblem(res, createFields)
	c.page(w, r, res.Code, "trunk_new.html", "New trunk", "trunks", f)
}

// afterWrite leads to the trunk list, or, when the API had warnings, to
// the trunk's edit form with each warning beside its field.
func (c *Console) afterWrite(w http.ResponseWriter, r *request, t trunk, done string, warnings []warning) {
	if len(warnings) == 0 {
		r.s.addFlash("Trunk " + t.Name + " " + done + ".")
		http.Redirect(w, r.Request, "/ui/trunks", http.StatusSeeOther)
		return
	}
	id := strconv.FormatUint(uint64(t.ID), 10)
	r.s.addFlash("Trunk " + t.Name + " " + done + ", with warnings: see beside the fields below.")
	r.s.setWarnings(id, warnings)
	http.Redirect(w, r.Request, "/ui/trunks/"+id+"/edit", http.StatusSeeOther)
}

// withWarnings puts warnings beside the form's fields.
func (f *formView) withWarnings(ws []warning) {
	if len(ws) == 0 {
		return
	}
	f.Warnings = map[string]string{}
	for _, w := range ws {
		if editFields[w.Field] {
			if f.Warnings[w.Field] != "" {
				f.Warnings[w.Field] += "; "
			}
			f.Warnings[w.Field] += w.Message
		} else {
			f.OtherWarnings = append(f.OtherWarnings, w.Field+": "+w.Message)
		}
	}
}

// profileNames lists the sofia profiles for the edit form's choice.
func (c *Console) profileNames(w http.ResponseWriter, r *request) ([]string, bool) {
	var list struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	if c.get(w, r, "/api/v1/sip/profiles?limit=1000", &list) {
		return nil, false
	}
	out := make([]string, 0, len(list.Items))
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out, true
}

// trunkPath is the API path of the trunk named in the URL (an id).
// trunkPath is the API path of the trunk the request names; false, with a
// 404 page written, when the id is no trunk id.
func (c *Console) trunkPath(w http.ResponseWriter, r *request) (string, bool) {
	id := r.PathValue("id")
	if _, err := strconv.ParseUint(id, 10, 32); err != nil {
		c.errorPage(w, r.s, http.StatusNotFound, "No such trunk.")
		return "", false
	}
	return "/api/v1/sip/trunks/" + id, true
}

var editFields = map[string]bool{"description": true, "profile": true, "proxy": true, "outbound_proxy": true, "register_proxy": true,
	"register": true, "realm": true, "username": true, "auth_username": true, "password": true, "numbers": true,
	"caller_id": true, "enabled": true, "version": true}

func (c *Console) editTrunkPage(w http.ResponseWriter, r *request) {
	path, ok := c.trunkPath(w, r)
	if !ok {
		return
	}
	var t trunk
	if c.get(w, r, path, &t) {
		return
	}
	f := formView{Trunk: t, Values: trunkValues(t)}
	if f.Profiles, ok = c.profileNames(w, r); !ok {
		return
	}
	f.withWarnings(r.s.takeWarnings(r.PathValue("id")))
	c.page(w, r, http.StatusOK, "trunk_edit.html", "Edit trunk "+t.Name, "trunks", f)
}

func trunkValues(t trunk) map[string]string {
	v := map[string]string{
		"description": t.Description, "profile": t.Profile, "proxy": t.Proxy, "outbound_proxy": t.OutboundProxy,
		"register_proxy": t.RegisterProxy, "realm": t.Realm, "username": t.Username, "auth_username": t.AuthUsername,
		"numbers": strings.Join(t.Numbers, "\n"), "caller_id": t.CallerID, "version": strconv.FormatInt(t.Version, 10),
	}
	if t.Register {
		v["register"] = "on"
	}
	if t.Enabled {
		v["enabled"] = "on"
	}
	return v
}

func (c *Console) editTrunk(w http.ResponseWriter, r *request) {
	path, ok := c.trunkPath(w, r)
	if !ok {
		return
	}
	form := r.PostForm
	body := map[string]any{}
	for _, k := range []string{"description", "profile", "proxy", "outbound_proxy", "register_proxy", "realm", "username", "auth_username", "caller_id"} {
		body[k] = form.Get(k)
	}
	if v := form.Get("password"); v != "" {
		body["password"] = v // empty keeps the stored one
	}
	body["numbers"] = splitList(form.Get("numbers"))
	body["register"] = form.Get("register") == "on"
	body["enabled"] = form.Get("enabled") == "on"
	res, err := c.call(r, http.MethodPatch, path, body, ifMatch(r)...)
	if err != nil {
		c.errorPage(w, r.s, http.StatusInternalServerError, "The request could not be made.")
		return
	}
	if res.ok() {
		var out struct {
			trunk
			Warnings []warning `json:"warnings"`
		}
		_ = res.decode(&out)
		c.afterWrite(w, r, out.trunk, "saved", out.Warnings)
		return
	}
	if res.Code == http.StatusUnauthorized || res.Code == http.StatusNotFound {
		c.apiFailure(w, r, res)
		return
	}
	var t trunk
	if c.get(w, r, path, &t) {
		return
	}
	f := formView{Trunk: t, Values: map[string]string{}}
	if f.Profiles, ok = c.profileNames(w, r); !ok {
		return
	}
	for k := range editFields {
		if k != "password" {
			f.Values[k] = form.Get(k)
		}
	}
	f.setProblem(res, editFields)
	if res.Code == http.StatusPreconditionFailed {
		f.Error = "Someone changed this trunk since you opened the form; its current settings are shown below the form's title. Reload to edit them."
	}
	c.page(w, r, res.Code, "trunk_edit.html", "Edit trunk "+t.Name, "trunks", f)
}

func (c *Console) setTrunkEnabled(w http.ResponseWriter, r *request) {
	path, ok := c.trunkPath(w, r)
	if !ok {
		return
	}
	on := r.PostForm.Get("enabled") == "true"
	res := c.write(w, r, http.MethodPatch, path, map[string]any{"enabled": on})
	if res == nil {
		return
	}
	var out trunk
	_ = res.decode(&out)
	done(w, r, "Trunk "+out.Name+" "+enabledWord(on)+".", "/ui/trunks")
}

func (c *Console) deleteTrunkPage(w http.ResponseWriter, r *request) {
	path, ok := c.trunkPath(w, r)
	if !ok {
		return
	}
	var t trunk
	if c.get(w, r, path, &t) {
		return
	}
	c.page(w, r, http.StatusOK, "trunk_delete.html", "Delete trunk "+t.Name, "trunks", formView{Trunk: t})
}

func (c *Console) deleteTrunk(w http.ResponseWriter, r *request) {
	path, ok := c.trunkPath(w, r)
	if !ok {
		return
	}
	if c.write(w, r, http.MethodDelete, path, nil) != nil {
		done(w, r, "Trunk "+r.PostForm.Get("name")+" deleted.", "/ui/trunks")
	}
}
