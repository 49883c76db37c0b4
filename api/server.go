// Package api is fsplane's platform API (echo v4, /api/v1): trunks,
// extensions, sofia profiles, providers with their presets and source
// ranges, API tokens, the audit log, firewall rules, FreeSWITCH status,
// health and readiness, and the OpenAPI document that describes them.
//
// Contract:
//   - Every /api/v1 route but the OpenAPI document and xml-curl (which does
//     its own authentication) needs "Authorization: Bearer <token>" with the
//     route's scope (admin carries all): 401 without a valid token, 403
//     without the scope. The token's name and the client address are the
//     actor of every audit event a request causes.
//   - A database that cannot be reached is 503 {"error": "database
//     unavailable"} with Retry-After, for every request that needs it;
//     /readyz says so too.
//   - Bodies are strict JSON (application/json, at most 64 KiB, no unknown
//     field, no null); errors are JSON {"error": …, "fields": {…}} from one
//     error handler, which is also the only place that logs them. A 5xx
//     never shows the internal error.
//   - Writes are validated before they reach the store, with rules that
//     know the providers (see validate_trunk.go): invalid input is a 422
//     naming each field, and findings that do not stop a write come back in
//     "warnings". Nothing user-supplied that reaches FreeSWITCH can carry
//     whitespace, a quote, XML or '$'; IPv6 hosts are stored in brackets.
//   - GET answers carry ETag "<version>"; PUT, PATCH and DELETE accept
//     If-Match or a "version" in the body (mismatch: 412). Without either,
//     the write is still checked against the version the handler read, and
//     a concurrent writer in between gives 409.
//   - No response carries a password or a token digest; decrypted SIP
//     credentials come only from GET /api/v1/sip/extensions/{id}/config
//     with the sip:secrets scope, and every such read is audited.
package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/models"
)

// Check is one readiness probe.
type Check func(ctx context.Context) CheckResult

// CheckResult is a probe's answer: Status is "ok", "degraded" or "down".
type CheckResult struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// ESL is what the API needs from the FreeSWITCH event socket client.
type ESL interface {
	Nodes() []esl.NodeStatus
	GatewayStatus(ctx context.Context, t models.Trunk) ([]esl.GatewayStatus, error)
	// Registrations and Unregister are FreeSWITCH's own registrations
	// (sofia xmlstatus profile P reg, flush_inbound_reg).
	Registrations(ctx context.Context, profiles []string) ([]esl.ProfileRegistrations, error)
	Unregister(ctx context.Context, u esl.Unregistration) (esl.Registration, error)
}

// Resolver looks up a host's addresses; *net.Resolver implements it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Options are the server's dependencies.
type Options struct {
	Store  *models.Store
	Logger *slog.Logger
	// XMLCurl serves POST /api/v1/sip/xml-curl and does its own
	// authentication (Basic or an xmlcurl-scoped token).
	XMLCurl http.Handler
	// Checks are added to /readyz by name.
	Checks map[string]Check
	// ESL answers /api/v1/esl/nodes and trunk status; nil means no
	// FreeSWITCH node is configured.
	ESL ESL
	// Render says whether a stored row reaches FreeSWITCH as stored
	// (render_error); nil leaves render_error out.
	Render Renderer
	// Resolver checks whether a proxy name is DNS round-robin; nil means
	// net.DefaultResolver. A failed lookup is never an error, only an
	// unknown.
	Resolver Resolver
	// ResolveTimeout bounds one lookup (default 1.5 s).
	ResolveTimeout time.Duration
	// Registerer receives the API's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Verifier checks bearer tokens; the same one should serve xml-curl.
	// nil: one over Store without a cache (every request asks the
	// database).
	Verifier *auth.Verifier
	// Federation serves /api/v1/federation; nil leaves those routes out.
	Federation Federation
	// Registrations is fsplane's own SIP registrar; nil: it does not run
	// (GET lists nothing, enabled false).
	Registrations Registrations
	// TrustProxyHeaders takes the client address for the audit log from
	// X-Forwarded-For (only behind a proxy that sets it); by default it is
	// the TCP peer.
	TrustProxyHeaders bool
	// STUNProbe gives the last public-address probe for GET
	// /api/v1/stun/probe (nil before the first); a nil STUNProbe means
	// none is configured.
	STUNProbe func() *STUNProbeOut
}

// Renderer is the part of xml-curl that says why a row would not be
// rendered ("" when it would); err is a database failure only.
type Renderer interface {
	TrunkProblems(ctx context.Context, trunks []models.Trunk) ([]string, error)
	ExtensionProblem(e *models.Extension) string
}

type server struct {
	store          *models.Store
	render         Renderer
	verifier       *auth.Verifier
	log            *slog.Logger
	esl            ESL
	resolver       Resolver
	resolveTimeout time.Duration
	metrics        *metrics
	checks         map[string]Check
	routes         []route
	federation     Federation
	registrations  Registrations
	doc            []byte // the OpenAPI document, built once in New
	stunProbeFn    func() *STUNProbeOut
}

// route is one documented endpoint; the OpenAPI document is built from
// the same table that registers the handlers.
type route struct {
	method, path string
	scope        string // "" for public routes
	summary      string
	handler      echo.HandlerFunc
	in           any // request body type, nil for none
	out          any // success body type, nil for none
	status       int // success status
	query        []param
	errors       []int // documented error statuses beyond 401/403
	raw          bool  // response is not JSON (firewall rules)
}

type param struct {
	name, typ, desc string
	enum            []string
}

// New builds the echo server with every route.
func New(opt Options) *echo.Echo {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Resolver == nil {
		opt.Resolver = net.DefaultResolver
	}
	if opt.ResolveTimeout <= 0 {
		opt.ResolveTimeout = 1500 * time.Millisecond
	}
	if opt.Verifier == nil {
		opt.Verifier = auth.NewVerifier(auth.VerifierOptions{Store: opt.Store})
	}
	s := &server{
		store: opt.Store, verifier: opt.Verifier, log: opt.Logger, esl: opt.ESL, render: opt.Render, resolver: opt.Resolver,
		resolveTimeout: opt.ResolveTimeout, metrics: newMetrics(opt.Registerer), checks: opt.Checks,
		federation:    opt.Federation,
		stunProbeFn:   opt.STUNProbe,
		registrations: opt.Registrations,
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	if opt.TrustProxyHeaders {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	} else {
		// The audit log must not believe a client's own X-Forwarded-For.
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.Use(requestID, s.metrics.middleware)

	s.routes = append(s.table(), s.federationRoutes()...)
	if opt.XMLCurl != nil {
		s.routes = append(s.routes, route{method: http.MethodPost, path: "/api/v1/sip/xml-curl",
			summary: "mod_xml_curl backend for FreeSWITCH (authenticates itself: Basic or an xmlcurl token)",
			handler: echo.WrapHandler(opt.XMLCurl), status: http.StatusOK, raw: true})
	}
	s.doc = s.openapiDoc()
	for _, r := range s.routes {
		var mw []echo.MiddlewareFunc
		if r.scope != "" {
			mw = append(mw, s.require(r.scope))
		}
		e.Add(r.method, r.path, r.handler, mw...)
	}
	return e
}

func (s *server) table() []route {
	read, write, secrets, admin, fw := auth.ScopeSIPRead, auth.ScopeSIPWrite, auth.ScopeSIPSecrets, auth.ScopeAdmin, auth.ScopeFirewallRead
	page := []param{{name: "limit", typ: "integer", desc: "page size, 1-1000 (default 100)"}, {name: "offset", typ: "integer", desc: "rows to skip"}}
	trunkFilter := append([]param{
		{name: "provider", typ: "string", desc: "only this provider"},
		{name: "profile", typ: "string", desc: "only this sofia profile"},
		{name: "enabled", typ: "boolean", desc: "only enabled (true) or disabled (false) trunks"},
	}, page...)
	writeErrs := []int{400, 404, 409, 412, 413, 415, 422}
	const (
		trunks   = "/api/v1/sip/trunks"
		trunk    = "/api/v1/sip/trunks/:id"
		exts     = "/api/v1/sip/extensions"
		ext      = "/api/v1/sip/extensions/:id"
		profiles = "/api/v1/sip/profiles"
		profile  = "/api/v1/sip/profiles/:id"
		provs    = "/api/v1/providers"
		prov     = "/api/v1/providers/:name"
		ranges   = "/api/v1/providers/:name/ranges"
		rng      = "/api/v1/providers/:name/ranges/:id"
	)
	G, P, U, A, D := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	return []route{
		{method: G, path: "/healthz", summary: "Liveness", handler: s.healthz, out: statusOut{}, status: 200},
		{method: G, path: "/readyz", summary: "Readiness: database and registered checks", handler: s.readyz, out: readyOut{}, status: 200, errors: []int{503}},
		{method: G, path: "/api/v1/openapi.json", summary: "This API's OpenAPI 3 document", handler: s.openapi, status: 200, raw: true},

		{method: G, path: trunks, scope: read, summary: "List trunks", handler: s.listTrunks, out: trunkList{}, status: 200, query: trunkFilter, errors: []int{422}},
		{method: P, path: trunks, scope: write, summary: "Create a trunk (from a preset: name, numbers and credentials suffice)", handler: s.createTrunk, in: trunkIn{}, out: TrunkWriteOut{}, status: 201, errors: writeErrs},
		{method: G, path: trunk, scope: read, summary: "Get a trunk by id or name", handler: s.getTrunk, out: TrunkOut{}, status: 200, errors: []int{404}},
		{method: U, path: trunk, scope: write, summary: "Replace a trunk (omitted fields take their defaults; an omitted password is kept)", handler: s.putTrunk, in: trunkIn{}, out: TrunkWriteOut{}, status: 200, errors: writeErrs},
		{method: A, path: trunk, scope: write, summary: "Change some fields of a trunk", handler: s.patchTrunk, in: trunkIn{}, out: TrunkWriteOut{}, status: 200, errors: writeErrs},
		{method: D, path: trunk, scope: write, summary: "Delete a trunk", handler: s.deleteTrunk, status: 204, errors: []int{400, 404, 409, 412}},
		{method: G, path: trunk + "/status", scope: read, summary: "Gateway state of the trunk on each FreeSWITCH node", handler: s.trunkStatus, out: trunkStatusOut{}, status: 200, errors: []int{404, 502, 503}},

		{method: G, path: exts, scope: read, summary: "List extensions", handler: s.listExtensions, out: extensionList{}, status: 200,
			query: append([]param{{name: "domain", typ: "string", desc: "only this domain"}}, page...), errors: []int{422}},
		{method: P, path: exts, scope: write, summary: "Create an extension", handler: s.createExtension, in: extensionIn{}, out: extensionOut{}, status: 201, errors: writeErrs},
		{method: G, path: ext, scope: read, summary: "Get an extension", handler: s.getExtension, out: extensionOut{}, status: 200, errors: []int{404}},
		{method: U, path: ext, scope: write, summary: "Replace an extension (an omitted password is kept)", handler: s.putExtension, in: extensionIn{}, out: extensionOut{}, status: 200, errors: writeErrs},
		{method: A, path: ext, scope: write, summary: "Change some fields of an extension", handler: s.patchExtension, in: extensionIn{}, out: extensionOut{}, status: 200, errors: writeErrs},
		{method: D, path: ext, scope: write, summary: "Delete an extension", handler: s.deleteExtension, status: 204, errors: []int{400, 404, 409, 412}},
		{method: G, path: ext + "/config", scope: secrets, summary: "The extension's decrypted SIP credentials (audited)", handler: s.extensionConfig, out: extensionConfigOut{}, status: 200, errors: []int{404}},

		{method: G, path: profiles, scope: read, summary: "List sofia profiles", handler: s.listProfiles, out: profileList{}, status: 200, query: page, errors: []int{422}},
		{method: P, path: profiles, scope: write, summary: "Create a sofia profile", handler: s.createProfile, in: profileIn{}, out: profileOut{}, status: 201, errors: writeErrs},
		{method: G, path: profile, scope: read, summary: "Get a profile by id or name", handler: s.getProfile, out: profileOut{}, status: 200, errors: []int{404}},
		{method: U, path: profile, scope: write, summary: "Replace a profile", handler: s.putProfile, in: profileIn{}, out: profileOut{}, status: 200, errors: writeErrs},
		{method: A, path: profile, scope: write, summary: "Change some settings of a profile", handler: s.patchProfile, in: profileIn{}, out: profileOut{}, status: 200, errors: writeErrs},
		{method: D, path: profile, scope: write, summary: "Delete a profile no trunk uses", handler: s.deleteProfile, status: 204, errors: []int{400, 404, 409, 412}},

		{method: G, path: provs, scope: read, summary: "Providers: built-in presets and every provider with ranges or trunks", handler: s.listProviders, out: providerList{}, status: 200},
		{method: G, path: prov, scope: read, summary: "A provider with its preset and ranges", handler: s.getProvider, out: providerOut{}, status: 200, errors: []int{404}},
		{method: G, path: ranges, scope: read, summary: "A provider's source ranges", handler: s.listRanges, out: rangeList{}, status: 200, errors: []int{422}},
		{method: P, path: ranges, scope: write, summary: "Add a source range", handler: s.createRange, in: rangeIn{}, out: rangeOut{}, status: 201, errors: writeErrs},
		{method: G, path: rng, scope: read, summary: "Get a source range", handler: s.getRange, out: rangeOut{}, status: 200, errors: []int{404}},
		{method: U, path: rng, scope: write, summary: "Replace a source range", handler: s.putRange, in: rangeIn{}, out: rangeOut{}, status: 200, errors: writeErrs},
		{method: A, path: rng, scope: write, summary: "Change a source range", handler: s.patchRange, in: rangeIn{}, out: rangeOut{}, status: 200, errors: writeErrs},
		{method: D, path: rng, scope: write, summary: "Delete a source range (not the last one of a provider with IP-authenticated trunks)", handler: s.deleteRange, status: 204, errors: []int{400, 404, 409, 412}},

		{method: G, path: "/api/v1/firewall/rules", scope: fw, summary: "Firewall rules for the provider ranges and profiles", handler: s.firewallRules, status: 200, raw: true,
			query:  []param{{name: "format", typ: "string", desc: "output format (default json)", enum: []string{"ufw", "nft", "acl", "json"}}, {name: "provider", typ: "string", desc: "only this provider's ranges"}},
			errors: []int{404, 422}},
		{method: G, path: "/api/v1/stun/probe", scope: read, summary: "The last STUN probe: public address, NAT type, RFC 5780 mapping and filtering", handler: s.stunProbe, out: STUNProbeOut{}, status: 200, errors: []int{404, 503}},
		{method: G, path: "/api/v1/sip/registrations", scope: read, summary: "Bindings of fsplane's own SIP registrar (AOR, contact, received, transport, user agent, expires)", handler: s.listRegistrations, out: RegistrationList{}, status: 200},
		{method: D, path: "/api/v1/sip/registrations", scope: write, summary: "Unregister one binding, named by aor and contact as listed", handler: s.deleteRegistration, status: 204,
			query:  []param{{name: "aor", typ: "string", desc: "address of record, user@domain"}, {name: "contact", typ: "string", desc: "contact URI"}},
			errors: []int{404, 422, 503}},
		{method: G, path: "/api/v1/sip/freeswitch-registrations", scope: read, summary: "FreeSWITCH's own registrations per node and sofia profile (sofia xmlstatus profile P reg through ESL): user, agent, contact, network IP and port, expiry",
			handler: s.listFSRegistrations, out: FSRegistrationList{}, status: 200, query: []param{{name: "profile", typ: "string", desc: "only this sofia profile"}}, errors: []int{404, 422, 502}},
		{method: D, path: "/api/v1/sip/freeswitch-registrations", scope: write, summary: "Flush one FreeSWITCH registration (sofia profile P flush_inbound_reg CALL-ID), named by node, profile and call_id as listed",
			handler: s.deleteFSRegistration, status: 204,
			query: []param{{name: "node", typ: "string", desc: "FreeSWITCH node, host:port"}, {name: "profile", typ: "string", desc: "sofia profile"},
				{name: "call_id", typ: "string", desc: "Call-ID as listed"}, {name: "reboot", typ: "boolean", desc: "also send the phone FreeSWITCH's check-sync NOTIFY (many phones reboot)"}},
			errors: []int{404, 409, 422, 502, 503}},
		{method: G, path: "/api/v1/esl/nodes", scope: read, summary: "FreeSWITCH event socket connections", handler: s.eslNodes, out: []esl.NodeStatus{}, status: 200},

		{method: G, path: "/api/v1/tokens", scope: admin, summary: "List API tokens (never their text or digest)", handler: s.listTokens, out: tokenList{}, status: 200},
		{method: P, path: "/api/v1/tokens", scope: admin, summary: "Create an API token; its text is shown once", handler: s.createToken, in: tokenIn{}, out: tokenCreatedOut{}, status: 201, errors: []int{400, 413, 415, 422}},
		{method: D, path: "/api/v1/tokens/:id", scope: admin, summary: "Revoke an API token", handler: s.deleteToken, status: 204, errors: []int{404}},

		{method: G, path: "/api/v1/audit", scope: admin, summary: "The audit log, newest first", handler: s.listAudit, out: AuditList{}, status: 200,
			query: []param{{name: "limit", typ: "integer", desc: "page size, 1-1000 (default 100)"}, {name: "before", typ: "integer", desc: "only events with a smaller id (next_before of the previous page)"},
				{name: "kind", typ: "string", desc: "only events about this kind of resource", enum: models.AuditKinds},
				{name: "action", typ: "string", desc: "only events of this action", enum: models.AuditActions},
				{name: "object_id", typ: "integer", desc: "only events about the resource with this id (needs kind)"},
				{name: "name", typ: "string", desc: "only events whose name (trunk, profile or provider name, user@domain) contains this text, case-sensitive"}},
			errors: []int{422}},
	}
}

type statusOut struct {
	Status string `json:"status"`
}

type readyOut struct {
	Status string                 `json:"status"`
	Checks map[string]CheckResult `json:"checks"`
}

func (s *server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusOut{Status: "ok"})
}

func (s *server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]CheckResult{}
	overall := "ok"
	db := CheckResult{Status: "ok"}
	if err := s.store.Ping(ctx); err != nil {
		db = CheckResult{Status: "down", Detail: "database unreachable"}
	}
	checks["database"] = db
	for name, chk := range s.checks {
		checks[name] = chk(ctx)
	}
	code := http.StatusOK
	for _, r := range checks {
		switch r.Status {
		case "down":
			overall, code = "down", http.StatusServiceUnavailable
		case "degraded":
			if overall == "ok" {
				overall = "degraded"
			}
		}
	}
	return c.JSON(code, readyOut{Status: overall, Checks: checks})
}

// openapiPath turns echo's ":id" into OpenAPI's "{id}".
func openapiPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}
