package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/models"
)

// Path is where the console is mounted.
const Path = "/ui/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ESL is what the console reads from the FreeSWITCH event socket client;
// *esl.Manager implements it.
type ESL interface {
	Nodes() []esl.NodeStatus
	GatewayStatus(ctx context.Context, t models.Trunk) ([]esl.GatewayStatus, error)
}

// Options are the console's dependencies.
type Options struct {
	// API is the platform API's handler: every write and most reads are
	// requests to it, made in-process as the session's principal.
	API http.Handler
	// Verifier is the token check the API and xml-curl use.
	Verifier *auth.Verifier
	// Store holds the sessions, and is read for the live gateway states
	// (the trunk list) and the firewall diff (ranges and profiles).
	Store *models.Store
	// ESL answers gateway states and node status; nil means no FreeSWITCH
	// node is configured.
	ESL    ESL
	Logger *slog.Logger
	// Registerer receives the console's metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	// SecureCookies sets Secure on the cookies even when the request did
	// not come over TLS (TLS ends at a proxy in front of fsplane).
	SecureCookies bool
	// IdleTimeout ends a session after this long without a request
	// (default 1h); MaxAge ends it this long after login (default 12h).
	IdleTimeout, MaxAge time.Duration
	// GatewayPoll is how often gateway states are read anew while a
	// browser listens for live updates (default 15s): FreeSWITCH's own
	// gateway events are pushed at once when ESL offers them
	// (esl.Manager.OnGatewayState); the poll is the net.
	GatewayPoll time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console serves /ui/. Build it with New; subscribe OnChange to the
// events.Bus; call Close when the HTTP server shuts down.
type Console struct {
	opt      Options
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessionStore
	throttle *loginThrottle
	hub      *hub
	met      *metrics
}

// New builds the console.
func New(opt Options) (*Console, error) {
	if opt.API == nil || opt.Verifier == nil || opt.Store == nil {
		return nil, errors.New("console: API, Verifier and Store are required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = time.Hour
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = 12 * time.Hour
	}
	if opt.GatewayPoll <= 0 {
		opt.GatewayPoll = 15 * time.Second
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		opt: opt, log: opt.Logger, pages: pages,
		sessions: newSessionStore(opt.Store, opt.Logger, opt.Now, opt.IdleTimeout, opt.MaxAge),
		throttle: newLoginThrottle(opt.Now),
		met:      newMetrics(opt.Registerer),
	}
	c.hub = newHub(c)
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))

	m.HandleFunc("GET /ui/{$}", c.index)
	m.HandleFunc("GET /ui/login", c.loginPage)
	m.HandleFunc("POST /ui/login", c.login)
	m.HandleFunc("POST /ui/logout", c.logout)

	read, write := auth.ScopeSIPRead, auth.ScopeSIPWrite
	m.Handle("GET /ui/events", c.authed(read, c.events))

	m.Handle("GET /ui/trunks", c.authed(read, c.trunksPage))
	m.Handle("GET /ui/trunks/new", c.authed(write, c.newTrunkPage))
	m.Handle("POST /ui/trunks", c.authed(write, c.createTrunk))
	m.Handle("GET /ui/trunks/{id}/edit", c.authed(write, c.editTrunkPage))
	m.Handle("POST /ui/trunks/{id}/edit", c.authed(write, c.editTrunk))
	m.Handle("POST /ui/trunks/{id}/enabled", c.authed(write, c.setTrunkEnabled))
	m.Handle("GET /ui/trunks/{id}/delete", c.authed(write, c.deleteTrunkPage))
	m.Handle("POST /ui/trunks/{id}/delete", c.authed(write, c.deleteTrunk))

	m.Handle("GET /ui/extensions", c.authed(read, c.extensionsPage))
	m.Handle("POST /ui/extensions", c.authed(write, c.createExtension))
	m.Handle("POST /ui/extensions/{id}/enabled", c.authed(write, c.setExtensionEnabled))
	m.Handle("GET /ui/extensions/{id}/delete", c.authed(write, c.deleteExtensionPage))
	m.Handle("POST /ui/extensions/{id}/delete", c.authed(write, c.deleteExtension))
	m.Handle("GET /ui/registrations", c.authed(read, c.registrationsPage))
	m.Handle("POST /ui/registrations/unregister", c.authed(write, c.unregister))
	m.Handle("POST /ui/registrations/freeswitch/unregister", c.authed(write, c.unregisterFS))
	m.Handle("GET /ui/providers", c.authed(read, c.providersPage))
	m.Handle("POST /ui/providers/{name}/ranges", c.authed(write, c.createRange))
	m.Handle("GET /ui/providers/{name}/ranges/{id}/delete", c.authed(write, c.deleteRangePage))
	m.Handle("POST /ui/providers/{name}/ranges/{id}/delete", c.authed(write, c.deleteRange))
	m.Handle("GET /ui/firewall", c.authed(auth.ScopeFirewallRead, c.firewallPage))
	m.Handle("POST /ui/firewall", c.authed(auth.ScopeFirewallRead, c.firewallPage))
	m.Handle("GET /ui/nodes", c.authed(read, c.nodesPage))
	m.Handle("GET /ui/audit", c.authed(auth.ScopeAdmin, c.auditPage))
	m.Handle("GET /ui/federation", c.authed(read, c.federationPage))
	c.mux = m
}

// ServeHTTP serves every path under /ui/.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Our own script and style only; no frames, no foreign form targets.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

// OnChange is the events.Bus subscriber: it hands the change to every
// browser listening on /ui/events. It never blocks.
func (c *Console) OnChange(ev models.ChangeEvent) { c.hub.change(ev) }

// Close ends every live-update stream (they would otherwise hold the HTTP
// server's graceful shutdown for its whole drain time); register it with
// http.Server.RegisterOnShutdown.
func (c *Console) Close() { c.hub.close() }
