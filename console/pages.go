package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/federation"
	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
)

// fsRegistrationsData is FreeSWITCH's own registrations as the API lists
// them, per node and profile.
type fsRegistrationsData struct {
	api.FSRegistrationList
	// Error says why the list could not be read (the rest of the page
	// still shows).
	Error string `json:"-"`
}

type registrationsPageData struct {
	Own api.RegistrationList
	FS  fsRegistrationsData
}

// registrationsPage lists the bindings of fsplane's own registrar and
// FreeSWITCH's own registrations on each node, with unregister actions for
// tokens that may write.
func (c *Console) registrationsPage(w http.ResponseWriter, r *request) {
	var d registrationsPageData
	if c.get(w, r, "/api/v1/sip/registrations", &d.Own) {
		return
	}
	res, err := c.call(r, http.MethodGet, "/api/v1/sip/freeswitch-registrations", nil)
	switch {
	case err != nil:
		d.FS.Error = "FreeSWITCH's registrations could not be read."
	case res.Code == http.StatusUnauthorized:
		c.apiFailure(w, r, res)
		return
	case !res.ok():
		d.FS.Error = "FreeSWITCH's registrations: " + res.problem().Error
	case res.decode(&d.FS) != nil:
		d.FS.Error = "FreeSWITCH's registrations: the API's answer could not be read."
	}
	c.page(w, r, http.StatusOK, "registrations.html", "Registrations", "registrations", d)
}

// unregisterFS flushes one of FreeSWITCH's registrations through the API
// (validated and audited there).
func (c *Console) unregisterFS(w http.ResponseWriter, r *request) {
	f := r.PostForm
	q := url.Values{"node": {f.Get("node")}, "profile": {f.Get("profile")}, "call_id": {f.Get("call_id")}}
	if f.Get("reboot") == "true" {
		q.Set("reboot", "true")
	}
	if c.write(w, r, http.MethodDelete, "/api/v1/sip/freeswitch-registrations?"+q.Encode(), nil) != nil {
		done(w, r, "Unregistered "+f.Get("user")+" from FreeSWITCH ("+f.Get("node")+", "+f.Get("profile")+").", "/ui/registrations")
	}
}

// unregister removes one binding through the API (audited there).
func (c *Console) unregister(w http.ResponseWriter, r *request) {
	aor, contact := r.PostForm.Get("aor"), r.PostForm.Get("contact")
	q := url.Values{"aor": {aor}, "contact": {contact}}
	if c.write(w, r, http.MethodDelete, "/api/v1/sip/registrations?"+q.Encode(), nil) != nil {
		done(w, r, "Unregistered "+contact+" of "+aor+".", "/ui/registrations")
	}
}

type providerRange struct {
	ID          uint     `json:"id"`
	Version     int64    `json:"version"`
	Provider    string   `json:"provider"`
	CIDR        string   `json:"cidr"`
	Ports       []string `json:"ports"`
	Description string   `json:"description"`
}

type provider struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Builtin bool   `json:"builtin"`
	Ranges  int    `json:"ranges"`
	Trunks  int    `json:"trunks"`
	List    []providerRange
	// Form is the add-range form, with the API's errors when this
	// provider's form was the one sent.
	Form formView
}

var rangeFields = map[string]bool{"cidr": true, "ports": true, "description": true}

func (c *Console) providersPage(w http.ResponseWriter, r *request) {
	c.renderProviders(w, r, http.StatusOK, "", formView{})
}

// renderProviders shows every provider with its ranges; form goes to the
// add-range form of provider formFor.
func (c *Console) renderProviders(w http.ResponseWriter, r *request, code int, formFor string, form formView) {
	var list struct {
		Items []provider `json:"items"`
	}
	if c.get(w, r, "/api/v1/providers", &list) {
		return
	}
	for i := range list.Items {
		var rl struct {
			Items []providerRange `json:"items"`
		}
		if c.get(w, r, "/api/v1/providers/"+url.PathEscape(list.Items[i].Name)+"/ranges", &rl) {
			return
		}
		list.Items[i].List = rl.Items
		list.Items[i].Form = formView{Values: map[string]string{}}
		if list.Items[i].Name == formFor {
			list.Items[i].Form = form
		}
	}
	c.page(w, r, code, "providers.html", "Providers and ranges", "providers", list.Items)
}

func (c *Console) createRange(w http.ResponseWriter, r *request) {
	name := r.PathValue("name")
	form := r.PostForm
	body := map[string]any{"cidr": form.Get("cidr"), "ports": splitList(form.Get("ports"))}
	if v := form.Get("description"); v != "" {
		body["description"] = v
	}
	res, err := c.call(r, http.MethodPost, "/api/v1/providers/"+url.PathEscape(name)+"/ranges", body)
	if err != nil {
		c.errorPage(w, r.s, http.StatusInternalServerError, "The request could not be made.")
		return
	}
	if res.Code == http.StatusCreated {
		r.s.addFlash("Range " + form.Get("cidr") + " added to " + name + ".")
		http.Redirect(w, r.Request, "/ui/providers", http.StatusSeeOther)
		return
	}
	if res.Code == http.StatusUnauthorized {
		c.apiFailure(w, r, res)
		return
	}
	f := formView{Values: map[string]string{"cidr": form.Get("cidr"), "ports": form.Get("ports"), "description": form.Get("description")}}
	f.setProblem(res, rangeFields)
	c.renderProviders(w, r, res.Code, name, f)
}

func rangePath(r *request) (string, bool) {
	id := r.PathValue("id")
	if _, err := strconv.ParseUint(id, 10, 32); err != nil {
		return "", false
	}
	return "/api/v1/providers/" + url.PathEscape(r.PathValue("name")) + "/ranges/" + id, true
}

func (c *Console) deleteRangePage(w http.ResponseWriter, r *request) {
	path, ok := rangePath(r)
	if !ok {
		c.errorPage(w, r.s, http.StatusNotFound, "No such range.")
		return
	}
	var rg providerRange
	if c.get(w, r, path, &rg) {
		return
	}
	c.page(w, r, http.StatusOK, "range_delete.html", "Delete range "+rg.CIDR, "providers", rg)
}

func (c *Console) deleteRange(w http.ResponseWriter, r *request) {
	path, ok := rangePath(r)
	if !ok {
		c.errorPage(w, r.s, http.StatusNotFound, "No such range.")
		return
	}
	if c.write(w, r, http.MethodDelete, path, nil) != nil {
		done(w, r, "Range "+r.PostForm.Get("cidr")+" deleted.", "/ui/providers")
	}
}

type firewallData struct {
	UFW, NFT string
	Pasted   string
	Diff     string
	Error    string
}

// firewallPage shows the ufw commands and the nftables ruleset, and on
// POST the diff against a pasted `ufw status`.
func (c *Console) firewallPage(w http.ResponseWriter, r *request) {
	var d firewallData
	for _, f := range []struct {
		format string
		dst    *string
	}{{"ufw", &d.UFW}, {"nft", &d.NFT}} {
		res, err := c.call(r, http.MethodGet, "/api/v1/firewall/rules?format="+f.format, nil)
		if err != nil || !res.ok() {
			if res != nil {
				c.apiFailure(w, r, res)
			} else {
				c.errorPage(w, r.s, http.StatusInternalServerError, "Reading the firewall rules failed.")
			}
			return
		}
		*f.dst = string(res.Body)
	}
	code := http.StatusOK
	if r.Method == http.MethodPost {
		d.Pasted = r.PostForm.Get("ufw_status")
		diff, err := c.ufwDiff(r, d.Pasted)
		if err != nil {
			d.Error, code = err.Error(), http.StatusUnprocessableEntity
		} else {
			d.Diff = diff
		}
	}
	c.page(w, r, code, "firewall.html", "Firewall preview", "firewall", d)
}

// ufwDiff is `fsplane firewall diff` on pasted text.
func (c *Console) ufwDiff(r *request, pasted string) (string, error) {
	st, err := firewall.ParseUFWStatus(strings.NewReader(pasted))
	if err != nil {
		return "", err
	}
	ranges, profiles, general, err := federation.PolicyInput(r.Context(), c.opt.Store)
	if err != nil {
		return "", err
	}
	pol, err := firewall.NewPolicy(ranges, profiles, general...)
	if err != nil {
		return "", err
	}
	return string(firewall.DiffUFW(pol, st).Script()), nil
}

func (c *Console) nodesPage(w http.ResponseWriter, r *request) {
	var nodes []esl.NodeStatus
	if c.get(w, r, "/api/v1/esl/nodes", &nodes) {
		return
	}
	c.page(w, r, http.StatusOK, "nodes.html", "FreeSWITCH nodes", "nodes", nodes)
}

type auditData struct {
	Items []api.AuditOut
	// Form is the filter as asked for, with the API's errors beside its
	// fields.
	Form           formView
	Kinds, Actions []string
	Filtered       bool
	// Older is the link to the next (older) page, "" at the end; Newest
	// the link back to the first page, "" on it.
	Older, Newest string
}

// auditFilters are the audit page's filter fields: the API's own query
// parameters, passed on as they came.
var auditFilters = map[string]bool{"kind": true, "action": true, "object_id": true, "name": true}

// auditPageSize is how many events a page of the audit log shows.
const auditPageSize = 100

// auditPage lists the audit log newest first, filtered by the API
// (GET /api/v1/audit's kind, action, object_id and name), a page at a time.
func (c *Console) auditPage(w http.ResponseWriter, r *request) {
	q := r.URL.Query()
	filter := url.Values{}
	d := auditData{Form: formView{Values: map[string]string{}}, Kinds: models.AuditKinds, Actions: models.AuditActions}
	for k := range auditFilters {
		if v := q.Get(k); v != "" {
			filter.Set(k, v)
			d.Form.Values[k] = v
			d.Filtered = true
		}
	}
	query := url.Values{"limit": {strconv.Itoa(auditPageSize)}}
	for k, v := range filter {
		query[k] = v
	}
	if b := q.Get("before"); b != "" {
		query.Set("before", b)
		d.Newest = "/ui/audit?" + filter.Encode()
	}
	res, err := c.call(r, http.MethodGet, "/api/v1/audit?"+query.Encode(), nil)
	if err != nil {
		c.errorPage(w, r.s, http.StatusInternalServerError, "The request could not be made.")
		return
	}
	if res.Code == http.StatusUnprocessableEntity {
		// A filter the API refuses: the form again, the error beside it.
		d.Form.setProblem(res, auditFilters)
		c.page(w, r, res.Code, "audit.html", "Audit log", "audit", d)
		return
	}
	if !res.ok() {
		c.apiFailure(w, r, res)
		return
	}
	var list api.AuditList
	if err := res.decode(&list); err != nil {
		c.log.Error("console: API read failed", "path", "/api/v1/audit", "err", err)
		c.errorPage(w, r.s, http.StatusInternalServerError, "Reading the audit log failed.")
		return
	}
	d.Items = list.Items
	if list.NextBefore > 0 {
		older := url.Values{"before": {strconv.FormatUint(uint64(list.NextBefore), 10)}}
		for k, v := range filter {
			older[k] = v
		}
		d.Older = "/ui/audit?" + older.Encode()
	}
	c.page(w, r, http.StatusOK, "audit.html", "Audit log", "audit", d)
}

// federationData is the federation and NAT page: what the API has of
// each, and why not where it has nothing.
type federationData struct {
	Settings   map[string]any // GET /api/v1/federation
	Warnings   []string
	SettingsIs string // "" when Settings is there, else why not
	Checked    bool   // the checklist was asked for (?check=1)
	Checks     []federationCheck
	CheckIs    string
	Probe      map[string]any // GET /api/v1/stun/probe
	ProbeIs    string
}

type federationCheck struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// federationPage shows the federation settings and warnings, the checklist
// when asked for (it asks DNS and dials out, so not on every view), and
// the last STUN probe. Each part says why it is missing instead of
// failing the page.
func (c *Console) federationPage(w http.ResponseWriter, r *request) {
	var d federationData
	why := func(res *apiResp, err error, what string) string {
		switch {
		case err != nil:
			return what + " could not be read."
		case res.Code == http.StatusNotFound:
			return what + " is not configured on this fsplane."
		case res.Code == http.StatusForbidden:
			return "Your token may not read " + what + "."
		default:
			return what + ": " + res.problem().Error
		}
	}
	res, err := c.call(r, http.MethodGet, "/api/v1/federation", nil)
	if err == nil && res.ok() && res.decode(&d.Settings) == nil {
		if ws, ok := d.Settings["warnings"].([]any); ok {
			for _, x := range ws {
				d.Warnings = append(d.Warnings, fmt.Sprint(x))
			}
		}
		delete(d.Settings, "warnings")
	} else {
		d.SettingsIs = why(res, err, "Federation")
	}
	if r.URL.Query().Get("check") == "1" {
		d.Checked = true
		var rep struct {
			Checks []federationCheck `json:"checks"`
		}
		res, err := c.call(r, http.MethodGet, "/api/v1/federation/check", nil)
		if err == nil && res.ok() && res.decode(&rep) == nil {
			d.Checks = rep.Checks
		} else {
			d.CheckIs = why(res, err, "The federation checklist")
		}
	}
	res, err = c.call(r, http.MethodGet, "/api/v1/stun/probe", nil)
	if err == nil && res.ok() && res.decode(&d.Probe) == nil {
		delete(d.Probe, "ipv6")
	} else if err == nil && res.Code == http.StatusServiceUnavailable {
		d.ProbeIs = "The first STUN probe has not finished yet."
	} else {
		d.ProbeIs = why(res, err, "The STUN probe (FSPLANE_STUN_PROBE_SERVER)")
	}
	c.page(w, r, http.StatusOK, "federation.html", "Federation and NAT", "federation", d)
}
