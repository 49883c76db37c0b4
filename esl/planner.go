package esl

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

// plan is what one node still owes: sets, not a queue, so a burst of
// changes folds into one killgw per gateway and one rescan per profile. A
// step leaves the plan when FreeSWITCH confirmed it.
type plan struct {
	loadSofia bool                // ensure mod_sofia is loaded
	start     map[string]bool     // ensure these profiles run
	kill      map[string]killStep // gateway name → step
	rescan    map[string]bool
	restart   map[string]bool
	// reloadCert: profiles whose TLS certificate files were replaced
	// (field "tls_cert"): `reloadcert`, else a restart when allowed, else
	// "restart needed".
	reloadCert map[string]bool
	reloadACL  bool
	flush      map[userKey]bool
	// bindings are profile binding changes folded while the node was not
	// connected → the newest change's commit time: whether FreeSWITCH read
	// them at its start is known only at connect (resolveBindings).
	bindings map[string]time.Time

	touches int       // steps added or confirmed, counted to keep a burst's window open
	ids     []uint64  // change events folded in, applied when the plan is empty
	oldest  time.Time // commit time of the oldest change folded in
	refused []error   // values that can never be put on a command line
	notices []string  // things fsplane will not do by itself
}

type killStep struct {
	profile string // any running profile works (killgw finds gateways by name)
	// wait: the gateway registered, so rescans wait for its
	// sofia::gateway_delete (its un-REGISTER must go out first).
	wait bool
}

type userKey struct{ user, domain string }

func newPlan() *plan {
	return &plan{
		start: map[string]bool{}, kill: map[string]killStep{}, rescan: map[string]bool{},
		restart: map[string]bool{}, flush: map[userKey]bool{}, bindings: map[string]time.Time{},
		reloadCert: map[string]bool{},
	}
}

// size is the number of commands still owed (NodeStatus.Pending).
func (p *plan) size() int {
	n := len(p.start) + len(p.kill) + len(p.rescan) + len(p.restart) + len(p.flush)
	if len(p.reloadCert) > 0 {
		n++ // one reloadcert serves every profile
	}
	if p.loadSofia {
		n++
	}
	if p.reloadACL {
		n++
	}
	return n
}

func (p *plan) empty() bool { return p.size() == 0 }

// bindingFields are the profile columns FreeSWITCH reads only when a profile
// starts: changing them needs `sofia profile P restart`.
var bindingFields = []string{
	"bind_ip", "sip_port", "rtp_ip", "ext_sip_ip", "ext_rtp_ip",
	"tls", "tls_port", "tls_cert_dir", "wss_binding", "family",
}

// CertField is the change-event field of a profile whose TLS certificate
// files were replaced in its tls-cert-dir (models.Store.CertificateRenewed).
const CertField = "tls_cert"

// planEnv is what planning needs to know about the node and the data.
type planEnv struct {
	// switchname is the node's FreeSWITCH switchname ("" when unknown:
	// every trunk is then assumed to belong to it).
	switchname   string
	allowRestart bool
	// fsStarted is when FreeSWITCH started (zero when unknown); a binding
	// changed before it was read at that start.
	fsStarted time.Time
	// deferBindings: the node is not connected, so whether FreeSWITCH will
	// start with a changed binding or already runs the old one is decided
	// at connect.
	deferBindings bool
	// trunkHosts returns a trunk's Hostnames; found is false when the
	// trunk no longer exists.
	trunkHosts func(id uint) (hosts []string, found bool, err error)
}

// belongs reports whether a trunk with these Hostnames is loaded on the
// node: an empty list means every node; names compare case-insensitively
// with the switchname FreeSWITCH sends mod_xml_curl as "hostname".
func belongs(hosts []string, switchname string) bool {
	if len(hosts) == 0 || switchname == "" {
		return true
	}
	for _, h := range hosts {
		if strings.EqualFold(strings.TrimSpace(h), switchname) {
			return true
		}
	}
	return false
}

func (p *plan) note(ev models.ChangeEvent) {
	p.ids = append(p.ids, ev.ID)
	if !ev.At.IsZero() && (p.oldest.IsZero() || ev.At.Before(p.oldest)) {
		p.oldest = ev.At
	}
}

func (p *plan) addKill(profile, gateway string, wait bool) {
	if err := names.Gateway(gateway); err != nil {
		p.refused = append(p.refused, invalid(err))
		return
	}
	if err := names.Profile(profile); err != nil {
		p.refused = append(p.refused, invalid(err))
		return
	}
	p.touches++
	k := p.kill[gateway]
	if k.profile == "" {
		k.profile = profile
	}
	k.wait = k.wait || wait
	p.kill[gateway] = k
}

func (p *plan) addProfile(set map[string]bool, profile string) {
	if err := names.Profile(profile); err != nil {
		p.refused = append(p.refused, invalid(err))
		return
	}
	p.touches++
	set[profile] = true
}

// add folds one committed change into the plan. It fails only when the
// data needed to decide cannot be read; the change is then not folded in.
func (p *plan) add(ev models.ChangeEvent, env planEnv) error {
	if ev.Cosmetic {
		p.note(ev)
		return nil
	}
	switch ev.Kind {
	case models.KindTrunk:
		if err := p.addTrunk(ev, env); err != nil {
			return err
		}
	case models.KindProfile:
		p.addProfileChange(ev, env)
	case models.KindProviderRange:
		// acl.conf is fetched at start and on reloadacl only.
		p.reloadACL = true
		p.touches++
	case models.KindExtension:
		// The directory is fetched per REGISTER, but a cacheable user
		// stays in FreeSWITCH's cache until flushed.
		if ev.Op != models.OpCreate {
			p.addFlush(ev.Name)
			if ev.OldName != "" {
				p.addFlush(ev.OldName)
			}
		}
	}
	p.note(ev)
	return nil
}

func (p *plan) addTrunk(ev models.ChangeEvent, env planEnv) error {
	belongsNow, found := false, false
	if ev.Op != models.OpDelete {
		hosts, ok, err := env.trunkHosts(ev.ObjectID)
		if err != nil {
			return fmt.Errorf("esl: read trunk %d for change %d: %w", ev.ObjectID, ev.ID, err)
		}
		found = ok
		belongsNow = ok && belongs(hosts, env.switchname)
	}
	switch ev.Op {
	case models.OpCreate:
		if ev.NewEnabled && belongsNow {
			p.addProfile(p.rescan, ev.NewProfile)
		}
	case models.OpUpdate:
		oldName := ev.Name
		if ev.OldName != "" {
			oldName = ev.OldName
		}
		// Register is the value after the change; a changed register
		// field means it was the opposite before.
		oldRegister := ev.Register != ev.HasField("register")
		// Hostnames before the change are unknown when they changed (or
		// the trunk is gone): killgw of an absent gateway is harmless.
		mayBeLoaded := ev.OldEnabled && (belongsNow || !found || ev.HasField("hostnames"))
		if mayBeLoaded {
			p.addKill(ev.OldProfile, oldName, oldRegister)
		}
		if ev.NewEnabled && belongsNow {
			p.addProfile(p.rescan, ev.NewProfile)
			if ev.OldProfile != ev.NewProfile && mayBeLoaded {
				p.addProfile(p.rescan, ev.OldProfile)
			}
		}
	case models.OpDelete:
		if ev.OldEnabled {
			p.addKill(ev.OldProfile, ev.Name, ev.Register)
		}
	}
	return nil
}

func (p *plan) addProfileChange(ev models.ChangeEvent, env planEnv) {
	switch ev.Op {
	case models.OpCreate:
		p.addProfile(p.start, ev.Name)
	case models.OpUpdate:
		if ev.OldName != "" {
			// The renamed profile must run; the old one keeps running
			// until FreeSWITCH restarts (stopping it would drop calls).
			p.addProfile(p.start, ev.Name)
			p.notices = append(p.notices, fmt.Sprintf("profile %q was renamed to %q; the old profile keeps running until stopped", ev.OldName, ev.Name))
		}
		binding, other := false, false
		for _, f := range ev.Fields {
			switch {
			case f == CertField:
				p.addProfile(p.reloadCert, ev.Name)
			case slices.Contains(bindingFields, f):
				binding = true
			case f != "description" && f != "name":
				other = true
			}
		}
		switch {
		case !binding:
		case env.deferBindings:
			if at := p.bindings[ev.Name]; at.IsZero() || ev.At.After(at) {
				p.bindings[ev.Name] = ev.At
			}
		case !env.fsStarted.IsZero() && !ev.At.IsZero() && ev.At.Before(env.fsStarted):
			// FreeSWITCH started after the change: it runs the new binding.
		default:
			p.bindingChanged(ev.Name, env.allowRestart)
		}
		if other {
			p.addProfile(p.rescan, ev.Name)
		}
	case models.OpDelete:
		p.notices = append(p.notices, fmt.Sprintf("profile %q was deleted; it keeps running until stopped", ev.Name))
	}
}

// bindingChanged: a running profile must restart to read its new binding.
func (p *plan) bindingChanged(profile string, allowRestart bool) {
	if allowRestart {
		p.addProfile(p.restart, profile)
		return
	}
	p.notices = append(p.notices, fmt.Sprintf("profile %q: binding changed; restart it (restarts are not allowed: FSPLANE_ESL_ALLOW_RESTART)", profile))
}

// resolveBindings decides, at connect, the binding changes folded while the
// node was away: a FreeSWITCH that started after the change read the new
// binding (nothing to do, nothing to tell); otherwise, or when its start
// time is unknown (zero), the profile must restart.
func (p *plan) resolveBindings(fsStarted time.Time, allowRestart bool) {
	for _, pr := range sortedKeys(p.bindings) {
		if at := p.bindings[pr]; fsStarted.IsZero() || at.IsZero() || !at.Before(fsStarted) {
			p.bindingChanged(pr, allowRestart)
		}
	}
	clear(p.bindings)
}

func (p *plan) addFlush(userAtDomain string) {
	i := strings.LastIndexByte(userAtDomain, '@')
	if i <= 0 {
		p.refused = append(p.refused, fmt.Errorf("esl: %w: extension %q is not user@domain", ErrInvalidValue, userAtDomain))
		return
	}
	u, d := userAtDomain[:i], userAtDomain[i+1:]
	if _, err := flushCmd(u, d); err != nil {
		p.refused = append(p.refused, err)
		return
	}
	p.touches++
	p.flush[userKey{u, d}] = true
}

// addSync adds what bringing a (re)connected node up to date takes: mod_sofia
// loaded, every profile running, a rescan of every profile that has enabled
// trunks for this node (gateways missing after a start-up race come back),
// and reloadacl (acl.conf is otherwise only read at start).
func (p *plan) addSync(profiles []models.Profile, trunks []models.Trunk, switchname string) {
	p.loadSofia = true
	for _, pr := range profiles {
		p.addProfile(p.start, pr.Name)
	}
	for _, t := range trunks {
		if t.Enabled && belongs(t.Hostnames, switchname) {
			p.addProfile(p.rescan, t.Profile)
		}
	}
	p.reloadACL = true
}
