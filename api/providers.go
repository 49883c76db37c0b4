package api

import (
	"context"
	"errors"
	"github.com/fsplane/fsplane/names"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/providers"
)

type providerSummary struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Builtin bool   `json:"builtin"`
	Ranges  int    `json:"ranges"`
	Trunks  int    `json:"trunks"`
}

type providerList struct {
	Items []providerSummary `json:"items"`
	Total int64             `json:"total"`
}

type providerOut struct {
	Name    string            `json:"name"`
	Title   string            `json:"title"`
	Builtin bool              `json:"builtin"`
	Preset  *providers.Preset `json:"preset,omitempty"`
	Ranges  []rangeOut        `json:"ranges"`
	Trunks  int               `json:"trunks"`
}

type rangeIn struct {
	Version     *int64    `json:"version"`
	CIDR        *string   `json:"cidr"`
	Ports       *[]string `json:"ports"`
	Description *string   `json:"description"`
}

type rangeOut struct {
	ID          uint      `json:"id"`
	Version     int64     `json:"version"`
	Provider    string    `json:"provider"`
	CIDR        string    `json:"cidr"`
	Ports       []string  `json:"ports"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type rangeList struct {
	Items []rangeOut `json:"items"`
	Total int64      `json:"total"`
}

func toRangeOut(r *models.ProviderRange) rangeOut {
	return rangeOut{ID: r.ID, Version: r.Version, Provider: r.Provider, CIDR: r.CIDR, Ports: nonNil(r.Ports),
		Description: r.Description, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// allTrunks returns every trunk (providers are few; trunks are hundreds
// at most).
func (s *server) allTrunks(ctx context.Context) ([]models.Trunk, error) {
	var out []models.Trunk
	for off := 0; ; off += 1000 {
		rows, total, err := s.store.ListTrunks(ctx, models.TrunkFilter{Page: models.Page{Limit: 1000, Offset: off}})
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
		if len(rows) == 0 || int64(len(out)) >= total {
			return out, nil
		}
	}
}

func (s *server) listProviders(c echo.Context) error {
	ctx := c.Request().Context()
	ranges, err := s.store.ListRanges(ctx, "")
	if err != nil {
		return err
	}
	trunks, err := s.allTrunks(ctx)
	if err != nil {
		return err
	}
	byName := map[string]*providerSummary{}
	get := func(name string) *providerSummary {
		if p, ok := byName[name]; ok {
			return p
		}
		p := &providerSummary{Name: name, Title: name}
		byName[name] = p
		return p
	}
	for _, pr := range providers.Builtin() {
		p := get(pr.Name)
		p.Title, p.Builtin = pr.Title, true
	}
	for _, r := range ranges {
		get(r.Provider).Ranges++
	}
	for _, t := range trunks {
		if t.Provider != "" {
			get(t.Provider).Trunks++
		}
	}
	out := providerList{Items: []providerSummary{}}
	for _, p := range byName {
		out.Items = append(out.Items, *p)
	}
	sort.Slice(out.Items, func(i, j int) bool { return out.Items[i].Name < out.Items[j].Name })
	out.Total = int64(len(out.Items))
	return c.JSON(http.StatusOK, out)
}

func (s *server) getProvider(c echo.Context) error {
	name := c.Param("name")
	ctx := c.Request().Context()
	out := providerOut{Name: name, Title: name, Ranges: []rangeOut{}}
	if p, err := providers.ByName(name); err == nil {
		out.Title, out.Builtin, out.Preset = p.Title, true, &p
	}
	ranges, err := s.store.ListRanges(ctx, name)
	if err != nil {
		return err
	}
	for i := range ranges {
		out.Ranges = append(out.Ranges, toRangeOut(&ranges[i]))
	}
	_, n, err := s.store.ListTrunks(ctx, models.TrunkFilter{Provider: name, Page: models.Page{Limit: 1}})
	if err != nil {
		return err
	}
	out.Trunks = int(n)
	if !out.Builtin && len(ranges) == 0 && n == 0 {
		return about(models.ErrNotFound, "provider %q", name)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) listRanges(c echo.Context) error {
	name := c.Param("name")
	if err := names.Provider(name); err != nil {
		return &ValidationError{Fields: map[string]string{"name": err.Error()}}
	}
	ranges, err := s.store.ListRanges(c.Request().Context(), name)
	if err != nil {
		return err
	}
	out := rangeList{Items: make([]rangeOut, 0, len(ranges)), Total: int64(len(ranges))}
	for i := range ranges {
		out.Items = append(out.Items, toRangeOut(&ranges[i]))
	}
	return c.JSON(http.StatusOK, out)
}

func (in *rangeIn) apply(r *models.ProviderRange) {
	set(&r.CIDR, in.CIDR)
	set(&r.Description, in.Description)
	if in.Ports != nil {
		r.Ports = models.StringList(*in.Ports)
	}
}

func validateRange(r *models.ProviderRange, fe fieldErrors) {
	fe.addErr("provider", names.Provider(r.Provider)) // "general" included: the firewall's reserved name
	if pfx, err := firewall.NormalizeCIDR(r.CIDR); err != nil {
		fe.addErr("cidr", err)
	} else if pfx.Addr().Is4() && pfx.Bits() < 8 || pfx.Addr().Is6() && pfx.Bits() < 16 {
		fe.add("cidr", "%s is too broad to be one provider's range (at least /8 for IPv4, /16 for IPv6)", pfx)
	} else {
		r.CIDR = pfx.String()
	}
	if len(r.Ports) == 0 {
		fe.add("ports", "at least one port, e.g. 5060/udp")
	}
	if len(r.Ports) > 32 {
		fe.add("ports", "at most 32 entries")
	}
	norm := make(models.StringList, 0, len(r.Ports))
	for i, p := range r.Ports {
		ps, err := firewall.ParsePortSpec(p)
		if err != nil {
			fe.add("ports", "[%d]: %v", i, err)
			continue
		}
		if !slices.Contains(norm, ps.String()) {
			norm = append(norm, ps.String())
		}
	}
	r.Ports = norm
	fe.addErr("description", names.Text(r.Description, 512))
}

func (s *server) createRange(c echo.Context) error {
	var in rangeIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	fe := fieldErrors{}
	if in.Version != nil {
		fe.add("version", "not allowed on create")
	}
	required(fe, map[string]bool{"cidr": in.CIDR != nil})
	r := models.ProviderRange{Provider: c.Param("name"), Ports: models.StringList{"5060/udp"}}
	in.apply(&r)
	if len(fe) == 0 {
		validateRange(&r, fe)
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := s.store.CreateRange(c.Request().Context(), &r); err != nil {
		return about(err, "range %s of %q", r.CIDR, r.Provider)
	}
	return created(c, "/api/v1/providers/"+r.Provider+"/ranges/"+strconv.FormatUint(uint64(r.ID), 10), r.Version, toRangeOut(&r))
}

func (s *server) rangeParam(c echo.Context) (*models.ProviderRange, error) {
	name, ref := c.Param("name"), c.Param("id")
	id, ok := parseID(ref)
	if !ok {
		return nil, about(models.ErrNotFound, "range %q of %q", ref, name)
	}
	r, err := s.store.GetRange(c.Request().Context(), id)
	if err == nil && r.Provider != name {
		err = models.ErrNotFound
	}
	return r, about(err, "range %d of %q", id, name)
}

func (s *server) getRange(c echo.Context) error {
	r, err := s.rangeParam(c)
	if err != nil {
		return err
	}
	setETag(c, r.Version)
	return c.JSON(http.StatusOK, toRangeOut(r))
}

func (s *server) putRange(c echo.Context) error   { return s.updateRange(c, false) }
func (s *server) patchRange(c echo.Context) error { return s.updateRange(c, true) }

func (s *server) updateRange(c echo.Context, patch bool) error {
	old, err := s.rangeParam(c)
	if err != nil {
		return err
	}
	var in rangeIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	version, err := checkVersion(c, in.Version, old.Version)
	if err != nil {
		return about(err, "range %d of %q", old.ID, old.Provider)
	}
	fe := fieldErrors{}
	r := *old
	if !patch {
		r = models.ProviderRange{Ports: models.StringList{"5060/udp"}}
		required(fe, map[string]bool{"cidr": in.CIDR != nil})
	}
	r.ID, r.Version, r.CreatedAt, r.Provider = old.ID, version, old.CreatedAt, old.Provider
	in.apply(&r)
	if len(fe) == 0 {
		validateRange(&r, fe)
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := s.store.UpdateRange(c.Request().Context(), &r); err != nil {
		return about(err, "range %d of %q", old.ID, old.Provider)
	}
	setETag(c, r.Version)
	return c.JSON(http.StatusOK, toRangeOut(&r))
}

func (s *server) deleteRange(c echo.Context) error {
	r, err := s.rangeParam(c)
	if err != nil {
		return err
	}
	version, err := checkVersion(c, nil, r.Version)
	if err != nil {
		return about(err, "range %d of %q", r.ID, r.Provider)
	}
	// The last range of a provider whose trunks authenticate by IP is
	// refused by the store, inside the delete's transaction.
	ctx := c.Request().Context()
	if err := s.store.DeleteRange(ctx, r.ID, version); err != nil {
		return about(err, "range %d of %q", r.ID, r.Provider)
	}
	return c.NoContent(http.StatusNoContent)
}

// firewallRules renders the policy with firewall.Export.
func (s *server) firewallRules(c echo.Context) error {
	format := c.QueryParam("format")
	if format == "" {
		format = firewall.FormatJSON
	}
	if !slices.Contains([]string{firewall.FormatUFW, firewall.FormatNFT, firewall.FormatACL, firewall.FormatJSON}, format) {
		return &ValidationError{Fields: map[string]string{"format": "must be ufw, nft, acl or json"}}
	}
	ctx := c.Request().Context()
	provider := c.QueryParam("provider")
	if provider != "" {
		if err := names.Provider(provider); err != nil {
			return &ValidationError{Fields: map[string]string{"provider": err.Error()}}
		}
	}
	ranges, err := s.store.ListRanges(ctx, provider)
	if err != nil {
		return err
	}
	if provider != "" && len(ranges) == 0 {
		if _, err := providers.ByName(provider); err != nil {
			return about(models.ErrNotFound, "provider %q", provider)
		}
	}
	profiles, err := s.store.ListProfiles(ctx)
	if err != nil {
		return err
	}
	var general []firewall.PortSpec
	if s.federation != nil {
		fed, _, _, err := s.federation.Settings(ctx)
		if err != nil {
			return err
		}
		general = fed.FirewallPorts()
	}
	body, ct, err := firewall.Export(format, ranges, profiles, general...)
	if errors.Is(err, firewall.ErrUnknownFormat) {
		return &ValidationError{Fields: map[string]string{"format": "must be ufw, nft, acl or json"}}
	}
	if err != nil {
		return err
	}
	if ct == "" {
		ct = echo.MIMETextPlainCharsetUTF8
	}
	return c.Blob(http.StatusOK, ct, body)
}
