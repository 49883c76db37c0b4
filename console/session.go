package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/fsplane/fsplane/auth"
)

const (
	sessionCookie = "fsplane_session"
	// loginCookie carries the login form's CSRF token: there is no
	// session yet to hold it (double submit).
	loginCookie = "fsplane_login"
	// maxForm bounds a form body (a pasted `ufw status` is the largest).
	maxForm = 256 << 10
)

// session is one logged-in browser. The token never leaves this process.
type session struct {
	id      string
	token   string
	csrf    string
	name    string // the token's name, for the page header
	created time.Time

	mu       sync.Mutex
	lastSeen time.Time
	flash    []string
	// warnings are the API's warnings of the last write to a trunk, shown
	// once beside the fields of its edit form.
	warnings map[string][]warning
}

func (s *session) setWarnings(trunkID string, w []warning) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warnings == nil {
		s.warnings = map[string][]warning{}
	}
	s.warnings[trunkID] = w
}

func (s *session) takeWarnings(trunkID string) []warning {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.warnings[trunkID]
	delete(s.warnings, trunkID)
	return w
}

func (s *session) addFlash(msg string) {
	s.mu.Lock()
	s.flash = append(s.flash, msg)
	s.mu.Unlock()
}

func (s *session) takeFlash() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

type sessionStore struct {
	now       func() time.Time
	idle, max time.Duration

	mu sync.Mutex
	m  map[string]*session
}

func newSessionStore(now func() time.Time, idle, max time.Duration) *sessionStore {
	return &sessionStore{now: now, idle: idle, max: max, m: map[string]*session{}}
}

// randomText returns 32 random bytes, URL-safe base64.
func randomText() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("console: crypto/rand failed: " + err.Error()) // the kernel's RNG does not fail
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (st *sessionStore) create(token, name string) *session {
	now := st.now()
	s := &session{id: randomText(), token: token, csrf: randomText(), name: name, created: now, lastSeen: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, o := range st.m {
		if st.expiredLocked(o, now) {
			delete(st.m, id)
		}
	}
	st.m[s.id] = s
	return s
}

func (st *sessionStore) expiredLocked(s *session, now time.Time) bool {
	s.mu.Lock()
	last := s.lastSeen
	s.mu.Unlock()
	return now.Sub(last) >= st.idle || now.Sub(s.created) >= st.max
}

// get returns the live session with this id; touch counts the request as
// activity (a live-update stream does not).
func (st *sessionStore) get(id string, touch bool) *session {
	if id == "" {
		return nil
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.m[id]
	if s == nil {
		return nil
	}
	if st.expiredLocked(s, now) {
		delete(st.m, id)
		return nil
	}
	if touch {
		s.mu.Lock()
		s.lastSeen = now
		s.mu.Unlock()
	}
	return s
}

func (st *sessionStore) drop(id string) {
	st.mu.Lock()
	delete(st.m, id)
	st.mu.Unlock()
}

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opt.SecureCookies }

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode,
	})
}

func (c *Console) sessionOf(r *http.Request, touch bool) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value, touch)
}

// sameText compares secrets in constant time.
func sameText(a, b string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// request is what a page handler gets: the session and its principal.
type request struct {
	*http.Request
	s *session
	p auth.Principal
}

type handlerFunc func(w http.ResponseWriter, r *request)

// authed wraps h: a session is required (else to /ui/login), a POST must
// carry the session's CSRF token (else 403, before anything else), the
// session's token must still verify, and it must carry scope.
func (c *Console) authed(scope string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sessionOf(r, r.URL.Path != "/ui/events")
		if s == nil {
			c.met.refused.WithLabelValues("session").Inc()
			c.toLogin(w, r)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				c.errorPage(w, s, http.StatusBadRequest, "The form could not be read: "+err.Error())
				return
			}
			if !sameText(r.PostForm.Get("csrf"), s.csrf) {
				c.met.refused.WithLabelValues("csrf").Inc()
				c.errorPage(w, s, http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again.")
				return
			}
		}
		p, err := c.opt.Verifier.Verify(r.Context(), s.token)
		if errors.Is(err, auth.ErrUnknownToken) {
			c.met.refused.WithLabelValues("token").Inc()
			c.sessions.drop(s.id)
			c.toLogin(w, r)
			return
		}
		if err != nil {
			c.log.Warn("console: token check failed", "err", err)
			c.errorPage(w, s, http.StatusServiceUnavailable, "fsplane cannot check your token right now (database unavailable); try again shortly.")
			return
		}
		if !p.Allows(scope) {
			c.met.refused.WithLabelValues("scope").Inc()
			c.errorPage(w, s, http.StatusForbidden, "Your token lacks the "+scope+" scope this page needs.")
			return
		}
		h(w, &request{Request: r, s: s, p: p})
	})
}

// toLogin sends a browser without a (live) session to the login page.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ui/events" {
		w.WriteHeader(http.StatusUnauthorized) // EventSource cannot follow a redirect to a page
		return
	}
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// index leads to the first page the session's token may read.
func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	s := c.sessionOf(r, true)
	if s == nil {
		c.toLogin(w, r)
		return
	}
	p, err := c.opt.Verifier.Verify(r.Context(), s.token)
	if errors.Is(err, auth.ErrUnknownToken) {
		c.sessions.drop(s.id)
		c.toLogin(w, r)
		return
	}
	if err != nil {
		c.errorPage(w, s, http.StatusServiceUnavailable, "fsplane cannot check your token right now (database unavailable); try again shortly.")
		return
	}
	dest := "/ui/trunks"
	if !p.Allows(auth.ScopeSIPRead) {
		dest = "/ui/firewall"
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

type loginView struct {
	CSRF  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.sessionOf(r, false) != nil {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	tok := randomText()
	c.setCookie(w, r, loginCookie, tok, "/ui/login", 3600)
	c.render(w, code, "login.html", loginView{CSRF: tok, Error: msg})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.renderLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameText(r.PostForm.Get("csrf"), ck.Value) {
		c.met.logins.WithLabelValues("csrf").Inc()
		c.renderLogin(w, r, http.StatusForbidden, "The login form's CSRF token is missing or wrong: try again.")
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		c.renderLogin(w, r, http.StatusUnprocessableEntity, "Enter an API token.")
		return
	}
	p, err := c.opt.Verifier.Verify(r.Context(), token)
	if errors.Is(err, auth.ErrUnknownToken) {
		c.met.logins.WithLabelValues("unknown").Inc()
		c.renderLogin(w, r, http.StatusUnauthorized, "Unknown or expired token.")
		return
	}
	if err != nil {
		c.met.logins.WithLabelValues("unavailable").Inc()
		c.log.Warn("console: token check failed at login", "err", err)
		c.renderLogin(w, r, http.StatusServiceUnavailable, "fsplane cannot check tokens right now (database unavailable); try again shortly.")
		return
	}
	if !p.Allows(auth.ScopeSIPRead) && !p.Allows(auth.ScopeFirewallRead) {
		c.met.logins.WithLabelValues("scope").Inc()
		c.renderLogin(w, r, http.StatusForbidden, "This token has neither sip:read nor firewall:read: the console has nothing to show it.")
		return
	}
	// A fresh id at every login: a session id planted before login is
	// never the one that gets the token; a session this browser had ends.
	if old := c.sessionOf(r, false); old != nil {
		c.sessions.drop(old.id)
		c.hub.endSession(old.id)
	}
	s := c.sessions.create(token, p.Name)
	c.met.logins.WithLabelValues("ok").Inc()
	c.setCookie(w, r, loginCookie, "", "/ui/login", -1)
	c.setCookie(w, r, sessionCookie, s.id, Path, int(c.opt.MaxAge/time.Second))
	c.log.Info("console: login", "token", p.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	s := c.sessionOf(r, false)
	if s != nil {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil || !sameText(r.PostForm.Get("csrf"), s.csrf) {
			c.errorPage(w, s, http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again.")
			return
		}
		c.sessions.drop(s.id)
		c.hub.endSession(s.id)
	}
	c.setCookie(w, r, sessionCookie, "", Path, -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
