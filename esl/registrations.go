package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Registration is one row of FreeSWITCH's sip_registrations as `sofia
// xmlstatus profile P reg` lists it.
type Registration struct {
	CallID string `json:"call_id"`
	// User is sip_user@sip_host, as FreeSWITCH writes it.
	User    string `json:"user"`
	Contact string `json:"contact"`
	Agent   string `json:"agent"`
	// Status is FreeSWITCH's status column ("Registered(UDP-NAT)"), RPID
	// the presence it keeps beside it ("unknown").
	Status string `json:"status"`
	RPID   string `json:"rpid,omitempty"`
	// ExpiresIn is the seconds left when FreeSWITCH answered (expsecs;
	// negative when the row outlived its expiry and is not purged yet);
	// ExpiresAt is ObservedAt plus that. FreeSWITCH's own exp(...) is
	// local time without a zone and is not used.
	ExpiresIn  int       `json:"expires_in"`
	ExpiresAt  time.Time `json:"expires_at"`
	PingStatus string    `json:"ping_status,omitempty"`
	// Host is the FreeSWITCH host that took the registration.
	Host        string `json:"host"`
	NetworkIP   string `json:"network_ip"`
	NetworkPort int    `json:"network_port"`
	AuthUser    string `json:"auth_user"`
	AuthRealm   string `json:"auth_realm"`
	MWIAccount  string `json:"mwi_account,omitempty"`
}

// ProfileRegistrations is one sofia profile's registrations on one node.
type ProfileRegistrations struct {
	Node    string `json:"node"`
	Profile string `json:"profile"`
	// State is the node's connection state (connected, standby, …).
	State string `json:"state"`
	// OK is false when the list could not be read; Detail says why (a
	// standby replica says so: the leader drives the node).
	OK            bool           `json:"ok"`
	Detail        string         `json:"detail,omitempty"`
	ObservedAt    time.Time      `json:"observed_at"`
	Registrations []Registration `json:"registrations"`
}

// Unregister errors.
var (
	// ErrUnknownNode: the node is not one of Options.Nodes.
	ErrUnknownNode = errors.New("not a configured FreeSWITCH node")
	// ErrNoSuchRegistration: FreeSWITCH does not list that Call-ID for
	// the profile (any more).
	ErrNoSuchRegistration = errors.New("FreeSWITCH lists no registration with this Call-ID on the profile")
	// ErrStandby: this replica does not drive the node; the leader does.
	ErrStandby = errors.New("this replica does not drive the node (standby): ask the leader")
	// ErrNotConnected: the node is not connected now.
	ErrNotConnected = errors.New("node not connected")
	// ErrWouldFlushOthers: FreeSWITCH matches the argument of
	// flush_inbound_reg against more than the Call-ID (sofia_reg.c
	// sofia_reg_expire_call_id: "user@host" also matches sip_user and
	// sip_host, a value without '@' every row of that sip_host), and it
	// would remove other registrations too.
	ErrWouldFlushOthers = errors.New("FreeSWITCH would also remove other registrations that match this Call-ID")
)

// parseRegistrations reads `sofia xmlstatus profile P reg` (mod_sofia.c
// cmd_xml_status, each row written by show_reg_callback_xml):
//
//	<?xml version="1.0" encoding="ISO-8859-1"?>
//	<profile>
//	  <registrations>
//	    <registration>
//	        <call-id>…</call-id>
//	        <user>sip_user@sip_host</user>
//	        <contact>…</contact>          (switch_amp_encode)
//	        <agent>…</agent>              (switch_amp_encode)
//	        <status>STATUS(RPID) exp(LOCALTIME) expsecs(N)</status>
//	        <ping-status>…</ping-status>
//	        <host>…</host>
//	        <network-ip>…</network-ip>
//	        <network-port>…</network-port>
//	        <sip-auth-user>…</sip-auth-user>  (switch_url_encode)
//	        <sip-auth-realm>…</sip-auth-realm>
//	        <mwi-account>user@host</mwi-account>
//	    </registration>
//	  </registrations>
//	</profile>
//
// It is read line by line, not with an XML parser: only contact and agent
// are escaped, so a Call-ID or user holding '<' or '&' (RFC 3261 allows
// them in a Call-ID) makes the document ill-formed, and one such REGISTER
// would hide every registration of the profile. Every element is on its
// own line, as FreeSWITCH writes it; the declared ISO-8859-1 is decoded.
func parseRegistrations(reply string, observed time.Time) ([]Registration, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sofia xmlstatus profile reg: %s", ErrProtocol, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(strings.NewReader(reply))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	if !sc.Scan() {
		return nil, bad("empty reply")
	}
	latin1, err := xmlDeclLatin1(strings.TrimSpace(sc.Text()))
	if err != nil {
		return nil, bad("%v", err)
	}
	out := []Registration{}
	var cur *Registration
	seen := map[string]bool{}
	inList, closed := false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if latin1 {
			line = decodeLatin1(line)
		}
		switch {
		case line == "" || line == "<profile>" || line == "</profile>":
			continue
		case line == "<registrations>":
			inList = true
			continue
		case line == "</registrations>":
			inList, closed = false, true
			continue
		case line == "<registration>" && inList:
			cur, seen = &Registration{}, map[string]bool{}
			continue
		case line == "</registration>" && cur != nil:
			for _, must := range []string{"call-id", "user", "contact", "status", "network-ip", "network-port"} {
				if !seen[must] {
					return nil, bad("a registration without <%s>", must)
				}
			}
			cur.ExpiresAt = observed.Add(time.Duration(cur.ExpiresIn) * time.Second)
			out = append(out, *cur)
			cur = nil
			continue
		}
		if cur == nil {
			return nil, bad("unexpected line %q", line)
		}
		tag, value, ok := element(line)
		if !ok {
			return nil, bad("unexpected line in a registration %q", line)
		}
		seen[tag] = true
		switch tag {
		case "call-id":
			cur.CallID = value
		case "user":
			cur.User = value
		case "contact":
			cur.Contact = ampDecode(value)
		case "agent":
			cur.Agent = ampDecode(value)
		case "status":
			if err := parseRegStatus(value, cur); err != nil {
				return nil, bad("%v", err)
			}
		case "ping-status":
			cur.PingStatus = value
		case "host":
			cur.Host = value
		case "network-ip":
			cur.NetworkIP = value
		case "network-port":
			if value != "" {
				p, err := strconv.Atoi(value)
				if err != nil || p < 0 || p > 65535 {
					return nil, bad("network-port %q is not a port", value)
				}
				cur.NetworkPort = p
			}
		case "sip-auth-user":
			u, err := url.PathUnescape(value)
			if err != nil {
				return nil, bad("sip-auth-user is not URL-encoded: %v", err)
			}
			cur.AuthUser = u
		case "sip-auth-realm":
			cur.AuthRealm = value
		case "mwi-account":
			if value != "@" {
				cur.MWIAccount = value
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, bad("%v", err)
	}
	if cur != nil || inList || !closed {
		return nil, bad("cut short")
	}
	return out, nil
}

// xmlDeclLatin1 reads the XML declaration: true for ISO-8859-1 (what
// cmd_xml_status declares), false for UTF-8 or ASCII.
func xmlDeclLatin1(decl string) (bool, error) {
	if !strings.HasPrefix(decl, "<?xml") || !strings.HasSuffix(decl, "?>") {
		return false, fmt.Errorf("not XML: %q", decl)
	}
	_, after, ok := strings.Cut(decl, `encoding="`)
	if !ok {
		return false, nil // XML's default, UTF-8
	}
	label, _, _ := strings.Cut(after, `"`)
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1":
		return true, nil
	case "utf-8", "utf8", "us-ascii", "ascii":
		return false, nil
	}
	return false, fmt.Errorf("unsupported charset %q", label)
}

func decodeLatin1(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			b := make([]rune, 0, len(s))
			for j := 0; j < len(s); j++ {
				b = append(b, rune(s[j]))
			}
			return string(b)
		}
	}
	return s
}

// element splits "<tag>value</tag>"; value is everything between, raw.
func element(line string) (tag, value string, ok bool) {
	if !strings.HasPrefix(line, "<") {
		return "", "", false
	}
	end := strings.IndexByte(line, '>')
	if end < 2 {
		return "", "", false
	}
	tag = line[1:end]
	closing := "</" + tag + ">"
	if strings.ContainsAny(tag, " </") || !strings.HasSuffix(line, closing) || len(line) < end+1+len(closing) {
		return "", "", false
	}
	return tag, line[end+1 : len(line)-len(closing)], true
}

// ampDecode undoes switch_amp_encode (switch_utils.c), which writes the
// five XML entities.
var ampDecode = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", "\"", "&apos;", "'", "&amp;", "&").Replace

// parseRegStatus reads "STATUS(RPID) exp(LOCALTIME) expsecs(N)".
func parseRegStatus(v string, r *Registration) error {
	i := strings.LastIndex(v, " expsecs(")
	if i < 0 || !strings.HasSuffix(v, ")") {
		return fmt.Errorf("status %q has no expsecs", v)
	}
	n, err := strconv.Atoi(v[i+len(" expsecs(") : len(v)-1])
	if err != nil {
		return fmt.Errorf("status %q: expsecs is not a number", v)
	}
	r.ExpiresIn = n
	head := v[:i]
	if j := strings.LastIndex(head, " exp("); j >= 0 {
		head = head[:j]
	}
	// STATUS itself may hold parentheses ("Registered(UDP-NAT)"): RPID is
	// the last group.
	if strings.HasSuffix(head, ")") {
		if k := strings.LastIndexByte(head, '('); k >= 0 {
			r.Status, r.RPID = head[:k], head[k+1:len(head)-1]
			return nil
		}
	}
	r.Status = head
	return nil
}

// registrations answers for one node: each profile's list, or why not.
func (n *node) registrations(ctx context.Context, profiles []string, cmds []command) []ProfileRegistrations {
	n.mu.Lock()
	c, state := n.c, n.st.State
	n.mu.Unlock()
	out := make([]ProfileRegistrations, 0, len(profiles))
	for i, p := range profiles {
		pr := ProfileRegistrations{Node: n.addr, Profile: p, State: state, ObservedAt: n.now(), Registrations: []Registration{}}
		switch {
		case c == nil && state == StateStandby:
			pr.Detail = ErrStandby.Error()
		case c == nil:
			pr.Detail = ErrNotConnected.Error()
		default:
			regs, err := n.queryRegistrations(ctx, c, cmds[i])
			pr.ObservedAt = n.now()
			if err != nil {
				pr.Detail = regError(err)
			} else {
				pr.OK, pr.Registrations = true, regs
			}
		}
		out = append(out, pr)
	}
	return out
}

func regError(err error) string {
	if errors.Is(err, ErrProfileNotRunning) {
		return "profile not running on this node"
	}
	if errors.Is(err, ErrNoSofia) {
		return "mod_sofia is not loaded on this node"
	}
	return "query failed: " + err.Error()
}

func (n *node) queryRegistrations(ctx context.Context, c commander, cmd command) ([]Registration, error) {
	// The caller going away must not abort the command mid-flight: that
	// would drop the node's connection (and resync it).
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.m.opt.HealthTimeout)
	defer cancel()
	reply, err := n.doCtx(qctx, c, cmd)
	if err != nil {
		return nil, err
	}
	return parseRegistrations(reply, n.now())
}

// Registrations lists FreeSWITCH's own registrations (`sofia xmlstatus
// profile P reg`) of each profile on each node: one entry per node and
// profile, in configuration order. A node that cannot answer says why in
// its entry (standby, not connected, profile not running); err is only a
// profile name that cannot go on a command line.
func (m *Manager) Registrations(ctx context.Context, profiles []string) ([]ProfileRegistrations, error) {
	cmds := make([]command, len(profiles))
	for i, p := range profiles {
		cmd, err := regStatusCmd(p)
		if err != nil {
			return nil, err
		}
		cmds[i] = cmd
	}
	var out []ProfileRegistrations
	for _, n := range m.nodes {
		out = append(out, n.registrations(ctx, profiles, cmds)...)
	}
	return out, ctx.Err()
}

// Unregistration names one of FreeSWITCH's registrations to flush.
type Unregistration struct {
	Node    string // a configured node, host:port
	Profile string
	CallID  string // as FreeSWITCH lists it, matched exactly
	// Reboot adds FreeSWITCH's "reboot" flag: the phone is sent a
	// check-sync NOTIFY (sofia_reg.c sofia_reg_send_reboot), which many
	// phones take as "reboot now".
	Reboot bool
	// Others are the profiles whose rows share the node's
	// sip_registrations table (FreeSWITCH's delete is not limited to
	// one profile): they are listed too, so that a flush that would
	// remove one of theirs is refused.
	Others []string
}

// Unregister flushes one registration from FreeSWITCH: `sofia profile P
// flush_inbound_reg <call-id>` (mod_sofia.c cmd_profile → sofia_reg.c
// sofia_reg_expire_call_id, which deletes the row and fires
// sofia::expire). The Call-ID must be one FreeSWITCH lists for the
// profile right now, and must not match any other row the way
// FreeSWITCH matches it (ErrWouldFlushOthers). It returns the
// registration as listed before the flush.
func (m *Manager) Unregister(ctx context.Context, u Unregistration) (Registration, error) {
	var n *node
	for _, x := range m.nodes {
		if x.addr == u.Node {
			n = x
		}
	}
	if n == nil {
		return Registration{}, ErrUnknownNode
	}
	flush, err := flushRegCmd(u.Profile, u.CallID, u.Reboot)
	if err != nil {
		return Registration{}, err
	}
	profiles := append([]string{u.Profile}, u.Others...)
	cmds := make([]command, 0, len(profiles))
	for _, p := range profiles {
		cmd, err := regStatusCmd(p)
		if err != nil {
			return Registration{}, err
		}
		cmds = append(cmds, cmd)
	}
	n.mu.Lock()
	c, state := n.c, n.st.State
	n.mu.Unlock()
	if c == nil {
		if state == StateStandby {
			return Registration{}, ErrStandby
		}
		return Registration{}, ErrNotConnected
	}
	var target *Registration
	var all []Registration
	for i, cmd := range cmds {
		regs, err := n.queryRegistrations(ctx, c, cmd)
		if err != nil {
			if i > 0 && errors.Is(err, ErrProfileNotRunning) {
				continue // another profile not running here holds no rows
			}
			return Registration{}, err
		}
		for j := range regs {
			if i == 0 && regs[j].CallID == u.CallID && target == nil {
				target = &regs[j]
				continue
			}
			all = append(all, regs[j])
		}
	}
	if target == nil {
		return Registration{}, ErrNoSuchRegistration
	}
	for _, r := range all {
		if flushMatches(u.CallID, r) {
			return Registration{}, fmt.Errorf("%w (%s)", ErrWouldFlushOthers, r.User)
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.opt.CommandTimeout)
	defer cancel()
	if _, err := n.doCtx(cctx, c, flush); err != nil {
		return Registration{}, err
	}
	n.log.Info("flushed a FreeSWITCH registration", "profile", u.Profile, "user", target.User, "reboot", u.Reboot)
	return *target, nil
}

// flushMatches is sofia_reg_expire_call_id's WHERE clause for one row:
// call_id = arg, or, for "user@host", sip_user = user and sip_host = host,
// or, without '@', sip_host = arg. (SQLite's = compares case-sensitively.)
func flushMatches(arg string, r Registration) bool {
	if r.CallID == arg {
		return true
	}
	rowUser, rowHost, _ := strings.Cut(r.User, "@")
	if user, host, ok := strings.Cut(arg, "@"); ok && user != "" {
		return rowUser == user && rowHost == host
	} else if ok {
		return rowHost == host
	}
	return rowHost == arg
}
