package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/names"
)

type profileIn struct {
	Version     *int64             `json:"version"`
	Name        *string            `json:"name"`
	Description *string            `json:"description"`
	Family      *string            `json:"family"`
	SIPIP       *string            `json:"sip_ip"`
	SIPPort     *int               `json:"sip_port"`
	RTPIP       *string            `json:"rtp_ip"`
	ExtSIPIP    *string            `json:"ext_sip_ip"`
	ExtRTPIP    *string            `json:"ext_rtp_ip"`
	RTPPortMin  *int               `json:"rtp_port_min"`
	RTPPortMax  *int               `json:"rtp_port_max"`
	TLS         *bool              `json:"tls"`
	TLSPort     *int               `json:"tls_port"`
	TLSCertDir  *string            `json:"tls_cert_dir"`
	WSSBinding  *string            `json:"wss_binding"`
	InboundACL  *string            `json:"inbound_acl"`
	AuthCalls   *bool              `json:"auth_calls"`
	Context     *string            `json:"context"`
	Params      *map[string]string `json:"params"`
	// UsePublicAddress: fsplane sets ext_sip_ip and ext_rtp_ip from its
	// STUN probe (GET /api/v1/stun/probe).
	UsePublicAddress *bool `json:"use_public_address"`
}

type profileOut struct {
	ID          uint              `json:"id"`
	Version     int64             `json:"version"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Family      string            `json:"family"`
	SIPIP       string            `json:"sip_ip"`
	SIPPort     int               `json:"sip_port"`
	RTPIP       string            `json:"rtp_ip"`
	ExtSIPIP    string            `json:"ext_sip_ip"`
	ExtRTPIP    string            `json:"ext_rtp_ip"`
	RTPPortMin  int               `json:"rtp_port_min"`
	RTPPortMax  int               `json:"rtp_port_max"`
	TLS         bool              `json:"tls"`
	TLSPort     int               `json:"tls_port"`
	TLSCertDir  string            `json:"tls_cert_dir"`
	WSSBinding  string            `json:"wss_binding"`
	InboundACL  string            `json:"inbound_acl"`
	AuthCalls   bool              `json:"auth_calls"`
	Context     string            `json:"context"`
	Params      map[string]string `json:"params"`
	// UsePublicAddress: fsplane sets ext_sip_ip and ext_rtp_ip from its
	// STUN probe.
	UsePublicAddress bool      `json:"use_public_address"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	// Warnings are findings about the profile as it is, e.g. TLS without
	// a configured certificate (FreeSWITCH then serves a self-signed one).
	Warnings []string `json:"warnings,omitempty"`
}

type profileList struct {
	Items  []profileOut `json:"items"`
	Total  int64        `json:"total"`
	Limit  int          `json:"limit"`
	Offset int          `json:"offset"`
}

// withWarnings adds the federation's warnings about each profile.
func (s *server) withWarnings(ctx context.Context, outs ...*profileOut) error {
	if s.federation == nil {
		return nil
	}
	ws, err := s.federation.ProfileWarnings(ctx)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if w, ok := ws[o.Name]; ok {
			o.Warnings = []string{w}
		}
	}
	return nil
}

func toProfileOut(p *models.Profile) profileOut {
	params := map[string]string(p.Params)
	if params == nil {
		params = map[string]string{}
	}
	return profileOut{ID: p.ID, Version: p.Version, Name: p.Name, Description: p.Description,
		Family: p.Family, SIPIP: p.BindIP, SIPPort: p.SIPPort, RTPIP: p.RTPIP, ExtSIPIP: p.ExtSIPIP,
		ExtRTPIP: p.ExtRTPIP, RTPPortMin: p.RTPPortMin, RTPPortMax: p.RTPPortMax, TLS: p.TLS,
		TLSPort: p.TLSPort, TLSCertDir: p.TLSCertDir, WSSBinding: p.WSSBinding, InboundACL: p.InboundACL,
		AuthCalls: p.AuthCalls, Context: p.Context, Params: params, UsePublicAddress: p.UsePublicAddress,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func (in *profileIn) apply(p *models.Profile) {
	set(&p.Name, in.Name)
	set(&p.Description, in.Description)
	set(&p.Family, in.Family)
	set(&p.BindIP, in.SIPIP)
	set(&p.SIPPort, in.SIPPort)
	set(&p.RTPIP, in.RTPIP)
	set(&p.ExtSIPIP, in.ExtSIPIP)
	set(&p.ExtRTPIP, in.ExtRTPIP)
	set(&p.RTPPortMin, in.RTPPortMin)
	set(&p.RTPPortMax, in.RTPPortMax)
	set(&p.TLS, in.TLS)
	set(&p.TLSPort, in.TLSPort)
	set(&p.TLSCertDir, in.TLSCertDir)
	set(&p.WSSBinding, in.WSSBinding)
	set(&p.InboundACL, in.InboundACL)
	set(&p.AuthCalls, in.AuthCalls)
	set(&p.Context, in.Context)
	set(&p.UsePublicAddress, in.UsePublicAddress)
	if in.Params != nil {
		p.Params = models.StringMap(*in.Params)
	}
}

func profileDefaults() models.Profile {
	return models.Profile{SIPPort: 5060, AuthCalls: true, Context: "public", Params: models.StringMap{}}
}

// familyAddr checks an address for a profile of family fam.
func familyAddr(s, fam string, allowUnspecified bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return a, fmt.Errorf("%q is not an IP address", s)
	}
	if a.IsUnspecified() && !allowUnspecified {
		return a, fmt.Errorf("%q is the unspecified address", s)
	}
	switch {
	case fam == models.FamilyIPv4 && !a.Is4():
		return a, fmt.Errorf("%s is not IPv4 but the profile's family is ipv4", a)
	case fam == models.FamilyIPv6 && !a.Is6():
		return a, fmt.Errorf("%s is not IPv6 but the profile's family is ipv6", a)
	}
	return a, nil
}

// extIP checks ext-sip-ip / ext-rtp-ip: an address (stored bare), auto-nat,
// stun:host[:port] or host:name.
func extIP(v *string, fam string) error {
	s := *v
	switch {
	case s == "" || s == "auto-nat":
		return names.Token(s)
	case strings.HasPrefix(s, "stun:"):
		_, err := names.ParseHost(strings.TrimPrefix(s, "stun:"), true)
		return err
	case strings.HasPrefix(s, "host:"):
		return names.DNSName(strings.TrimPrefix(s, "host:"))
	}
	a, err := familyAddr(s, fam, false)
	if err != nil {
		return fmt.Errorf("%w (or auto-nat, stun:HOST, host:NAME)", err)
	}
	*v = a.String()
	return nil
}

func validateProfile(p *models.Profile, fe fieldErrors) {
	fe.addErr("name", names.Profile(p.Name))
	fe.addErr("description", names.Text(p.Description, 512))
	fam := p.Family
	if !slices.Contains([]string{models.FamilyIPv4, models.FamilyIPv6, models.FamilyDual}, fam) {
		fe.add("family", "%q must be ipv4, ipv6 or dual", fam)
		fam = "?"
	}
	if fam != "?" {
		if fam == models.FamilyDual {
			if a, err := netip.ParseAddr(strings.Trim(p.BindIP, "[]")); err != nil || a != netip.IPv6Unspecified() {
				fe.add("sip_ip", "%q: a dual-stack profile binds to ::", p.BindIP)
			} else {
				p.BindIP = "::"
			}
		} else if a, err := familyAddr(p.BindIP, fam, true); err != nil {
			fe.addErr("sip_ip", err)
		} else {
			p.BindIP = a.String()
		}
		if p.RTPIP != "" {
			if a, err := familyAddr(p.RTPIP, fam, true); err != nil {
				fe.addErr("rtp_ip", err)
			} else {
				p.RTPIP = a.String()
			}
		}
		fe.addErr("ext_sip_ip", extIP(&p.ExtSIPIP, fam))
		fe.addErr("ext_rtp_ip", extIP(&p.ExtRTPIP, fam))
	}
	fe.addErr("sip_port", checkRange(p.SIPPort, 1, 65535))
	if (p.RTPPortMin == 0) != (p.RTPPortMax == 0) {
		// One without the other: name the one that is missing.
		missing := "rtp_port_max"
		if p.RTPPortMin == 0 {
			missing = "rtp_port_min"
		}
		fe.add(missing, "set rtp_port_min and rtp_port_max together (or neither)")
	}
	if p.RTPPortMin != 0 || p.RTPPortMax != 0 {
		fe.addErr("rtp_port_min", checkRange(p.RTPPortMin, 1024, 65535))
		fe.addErr("rtp_port_max", checkRange(p.RTPPortMax, 1024, 65535))
		if p.RTPPortMax < p.RTPPortMin {
			fe.add("rtp_port_max", "%d is below rtp_port_min %d", p.RTPPortMax, p.RTPPortMin)
		}
	}
	if p.TLS {
		if err := checkRange(p.TLSPort, 1, 65535); err != nil {
			fe.add("tls_port", "%v (required when tls is true)", err)
		} else if p.TLSPort == p.SIPPort {
			fe.add("tls_port", "%d is also the sip_port", p.TLSPort)
		}
	} else if p.TLSPort != 0 {
		fe.add("tls_port", "set tls to true to use a TLS port")
	}
	if p.TLSCertDir != "" {
		fe.addErr("tls_cert_dir", names.CertDir(p.TLSCertDir))
	}
	if p.WSSBinding != "" {
		fe.addErr("wss_binding", checkWSS(p.WSSBinding))
	}
	if p.InboundACL != "" {
		fe.addErr("inbound_acl", names.ACL(p.InboundACL))
	}
	fe.addErr("context", names.Context(p.Context))
	if len(p.Params) > 100 {
		fe.add("params", "at most 100 params")
	}
	keys := make([]string, 0, len(p.Params))
	for k := range p.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fe.addErr("params", names.Setting(k, p.Params[k]))
	}
}

// checkWSS checks a wss-binding: ":7443", "1.2.3.4:7443" or "[::]:7443".
func checkWSS(s string) error {
	if err := names.Token(s); err != nil {
		return err
	}
	if strings.HasPrefix(s, ":") {
		_, err := names.ParsePort(s[1:])
		return err
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return fmt.Errorf("%q must be :PORT or ADDRESS:PORT (e.g. :7443)", s)
	}
	if ap.Addr().Zone() != "" {
		return fmt.Errorf("%q has a zone; bind to a global address or to [::]", s)
	}
	return nil
}

// trunksOn returns every trunk of a profile.
func (s *server) trunksOn(ctx context.Context, profile string) ([]models.Trunk, error) {
	var out []models.Trunk
	for off := 0; ; off += 1000 {
		rows, total, err := s.store.ListTrunks(ctx, models.TrunkFilter{Profile: profile, Page: models.Page{Limit: 1000, Offset: off}})
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
		if len(rows) == 0 || int64(len(out)) >= total {
			return out, nil
		}
	}
}

// storedHosts parses a stored trunk's hosts (already normalised).
func storedHosts(t *models.Trunk) map[string]names.Host {
	out := map[string]names.Host{}
	for f, v := range map[string]string{"proxy": t.Proxy, "outbound_proxy": t.OutboundProxy, "register_proxy": t.RegisterProxy} {
		if h, err := names.ParseHost(v, true); err == nil {
			out[f] = h
		}
	}
	return out
}

// checkProfileTrunks refuses a profile change that would break a trunk
// on it: the same family rules as a trunk write, seen from the profile.
func (s *server) checkProfileTrunks(ctx context.Context, p *models.Profile, trunks []models.Trunk, fe fieldErrors) error {
	for i := range trunks {
		t := &trunks[i]
		var ranges []models.ProviderRange
		if t.Provider != "" {
			var err error
			if ranges, err = s.store.ListRanges(ctx, t.Provider); err != nil {
				return err
			}
		}
		for _, is := range familyIssues(t, storedHosts(t), p, ranges) {
			fe.add(is.setting, "trunk %q: %s", t.Name, is.msg)
		}
	}
	return nil
}

func (s *server) listProfiles(c echo.Context) error {
	fe := fieldErrors{}
	pg := pageParams(c, fe)
	if err := fe.err(); err != nil {
		return err
	}
	rows, err := s.store.ListProfiles(c.Request().Context())
	if err != nil {
		return err
	}
	out := profileList{Items: []profileOut{}, Total: int64(len(rows)), Limit: pg.Limit, Offset: pg.Offset}
	for i := pg.Offset; i < len(rows) && i < pg.Offset+pg.Limit; i++ {
		out.Items = append(out.Items, toProfileOut(&rows[i]))
	}
	ptrs := make([]*profileOut, len(out.Items))
	for i := range out.Items {
		ptrs[i] = &out.Items[i]
	}
	if err := s.withWarnings(c.Request().Context(), ptrs...); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) createProfile(c echo.Context) error {
	var in profileIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	fe := fieldErrors{}
	if in.Version != nil {
		fe.add("version", "not allowed on create")
	}
	required(fe, map[string]bool{"name": in.Name != nil, "family": in.Family != nil, "sip_ip": in.SIPIP != nil})
	p := profileDefaults()
	in.apply(&p)
	if len(fe) == 0 {
		validateProfile(&p, fe)
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := s.store.CreateProfile(c.Request().Context(), &p); err != nil {
		return about(err, "profile %q", p.Name)
	}
	out := toProfileOut(&p)
	if err := s.withWarnings(c.Request().Context(), &out); err != nil {
		return err
	}
	return created(c, "/api/v1/sip/profiles/"+strconv.FormatUint(uint64(p.ID), 10), p.Version, out)
}

func (s *server) profileParam(c echo.Context) (*models.Profile, error) {
	ref := c.Param("id")
	ctx := c.Request().Context()
	var (
		p   *models.Profile
		err error
	)
	if id, ok := parseID(ref); ok {
		p, err = s.store.GetProfile(ctx, id)
	} else {
		p, err = s.store.ProfileByName(ctx, ref)
	}
	return p, about(err, "profile %q", ref)
}

func (s *server) getProfile(c echo.Context) error {
	p, err := s.profileParam(c)
	if err != nil {
		return err
	}
	setETag(c, p.Version)
	out := toProfileOut(p)
	if err := s.withWarnings(c.Request().Context(), &out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) putProfile(c echo.Context) error   { return s.updateProfile(c, false) }
func (s *server) patchProfile(c echo.Context) error { return s.updateProfile(c, true) }

func (s *server) updateProfile(c echo.Context, patch bool) error {
	old, err := s.profileParam(c)
	if err != nil {
		return err
	}
	var in profileIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	version, err := checkVersion(c, in.Version, old.Version)
	if err != nil {
		return about(err, "profile %q", old.Name)
	}
	fe := fieldErrors{}
	p := *old
	if !patch {
		p = profileDefaults()
		required(fe, map[string]bool{"name": in.Name != nil, "family": in.Family != nil, "sip_ip": in.SIPIP != nil})
	}
	p.ID, p.Version, p.CreatedAt = old.ID, version, old.CreatedAt
	in.apply(&p)
	if len(fe) == 0 {
		validateProfile(&p, fe)
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	trunks, err := s.trunksOn(ctx, old.Name)
	if err != nil {
		return err
	}
	if p.Name != old.Name && len(trunks) > 0 {
		return about(ErrInUse, "profile %q is used by %d trunks (e.g. %q); move them before renaming it", old.Name, len(trunks), trunks[0].Name)
	}
	if err := s.checkProfileTrunks(ctx, &p, trunks, fe); err != nil {
		return err
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := s.store.UpdateProfile(ctx, &p); err != nil {
		return about(err, "profile %q", old.Name)
	}
	setETag(c, p.Version)
	out := toProfileOut(&p)
	if err := s.withWarnings(c.Request().Context(), &out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) deleteProfile(c echo.Context) error {
	p, err := s.profileParam(c)
	if err != nil {
		return err
	}
	version, err := checkVersion(c, nil, p.Version)
	if err != nil {
		return about(err, "profile %q", p.Name)
	}
	ctx := c.Request().Context()
	trunks, err := s.trunksOn(ctx, p.Name)
	if err != nil {
		return err
	}
	if len(trunks) > 0 {
		return about(ErrInUse, "profile %q is used by %d trunks (e.g. %q)", p.Name, len(trunks), trunks[0].Name)
	}
	if err := s.store.DeleteProfile(ctx, p.ID, version); err != nil {
		return about(err, "profile %q", p.Name)
	}
	return c.NoContent(http.StatusNoContent)
}
