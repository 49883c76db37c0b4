package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models"
)

const (
	sessionCookie = "fsplane_session"
	// loginCookie carries the login form's CSRF token: there is no
	// session yet to hold it (double submit).
	loginCookie = "fsplane_login"
	// maxForm bounds a form body (a pasted `ufw status` is the largest).
	maxForm = 256 << 10
)

// session is one logged-in browser, as the store had it at this request.
// The store holds the digests of its id and of the API token it was
// opened with, never either text (models.ConsoleSession).
type session struct {
	id    string   // the cookie's value; its digest keys the row
	hash  string   // auth.Hash(id)
	token [32]byte // the API token's digest, for Verifier.VerifyDigest
	csrf  string
	name  string // the token's name, for the page header

	st  *sessionStore
	ctx context.Context
	// notices as read or last written, for the compare-and-swap.
	notices string
}

// notices are what the next page shows once: messages after a write, and
// the API's warnings of the last write to a trunk, beside the fields of its
// edit form. They live in the session's row so that the page after a
// redirect finds them on whichever replica serves it.
type notices struct {
	Flash    []string             `json:"flash,omitempty"`
	Warnings map[string][]warning `json:"warnings,omitempty"`
}

// Bounds on what a session accumulates when its pages are not read (a
// script that posts and never follows the redirect).
const (
	maxFlash         = 20
	maxWarnedTrunks  = 20
	noticeSwapsTried = 5
)

// update applies fn to the session's notices and writes them back if the
// row still holds what fn saw; otherwise it reads them again and retries.
// A notice is not worth failing the request over: a store error is logged.
func (s *session) update(fn func(n *notices)) {
	cur := s.notices
	for range noticeSwapsTried {
		var n notices
		if cur != "" {
			if err := json.Unmarshal([]byte(cur), &n); err != nil {
				s.st.log.Warn("console: unreadable session notices dropped", "err", err)
				n = notices{}
			}
		}
		fn(&n)
		next := ""
		if len(n.Flash) > 0 || len(n.Warnings) > 0 {
			b, err := json.Marshal(n)
			if err != nil {
				s.st.log.Error("console: session notices do not marshal", "err", err)
				return
			}
			next = string(b)
		}
		if next == cur {
			return
		}
		ok, err := s.st.db.SwapConsoleNotices(s.ctx, s.hash, cur, next)
		if err != nil {
			s.st.log.Warn("console: writing session notices failed", "err", err)
			return
		}
		if ok {
			s.notices = next
			return
		}
		if cur, err = s.st.db.ConsoleNotices(s.ctx, s.hash); err != nil {
			if !models.IsNotFound(err) { // logged out meanwhile: nothing to show
				s.st.log.Warn("console: reading session notices failed", "err", err)
			}
			return
		}
	}
	s.st.log.Warn("console: session notices kept changing; one update dropped")
}

func (s *session) setWarnings(trunkID string, w []warning) {
	s.update(func(n *notices) {
		if n.Warnings == nil {
			n.Warnings = map[string][]warning{}
		}
		if _, ok := n.Warnings[trunkID]; !ok && len(n.Warnings) >= maxWarnedTrunks {
			clear(n.Warnings)
		}
		n.Warnings[trunkID] = w
	})
}

func (s *session) takeWarnings(trunkID string) []warning {
	if s.notices == "" {
		return nil
	}
	var w []warning
	s.update(func(n *notices) {
		w = n.Warnings[trunkID]
		delete(n.Warnings, trunkID)
	})
	return w
}

func (s *session) addFlash(msg string) {
	s.update(func(n *notices) {
		n.Flash = append(n.Flash, msg)
		if len(n.Flash) > maxFlash {
			n.Flash = n.Flash[len(n.Flash)-maxFlash:]
		}
	})
}

func (s *session) takeFlash() []string {
	if s.notices == "" {
		return nil
	}
	var f []string
	s.update(func(n *notices) {
		f = n.Flash
		n.Flash = nil
	})
	return f
}

// sessionStore keeps the console's sessions in the database: every
// replica knows every session, and a restart logs nobody out. There is no
// cache: a request reads its session's row (one primary-key lookup), so a
// logout anywhere ends the session everywhere at once.
type sessionStore struct {
	db        *models.Store
	log       *slog.Logger
	now       func() time.Time
	idle, max time.Duration
}

func newSessionStore(db *models.Store, log *slog.Logger, now func() time.Time, idle, max time.Duration) *sessionStore {
	return &sessionStore{db: db, log: log, now: now, idle: idle, max: max}
}

// touchEvery bounds how often a request writes its session's idle end:
// once a minute (less for idle timeouts under 10 minutes) rather than at
// every request, so a session ends up to that much before IdleTimeout has
// passed since its last request.
func (st *sessionStore) touchEvery() time.Duration { return min(time.Minute, st.idle/10) }

// randomText returns 32 random bytes, URL-safe base64.
func randomText() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("console: crypto/rand failed: " + err.Error()) // the kernel's RNG does not fail
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create opens a session for the token with this digest, after sweeping
// the sessions that ended (logins are rare; ended rows never outnumber
// the logins since the last one).
func (st *sessionStore) create(ctx context.Context, token [32]byte, name string) (*session, error) {
	now := st.now()
	if n, err := st.db.DeleteExpiredConsoleSessions(ctx, now); err != nil {
		st.log.Warn("console: sweeping ended sessions failed", "err", err)
	} else if n > 0 {
		st.log.Debug("console: ended sessions swept", "count", n)
	}
	s := &session{id: randomText(), token: token, csrf: randomText(), name: name, st: st, ctx: ctx}
	s.hash = auth.Hash(s.id)
	err := st.db.CreateConsoleSession(ctx, &models.ConsoleSession{
		IDHash: s.hash, TokenHash: hex.EncodeToString(token[:]), TokenName: name, CSRF: s.csrf,
		CreatedAt: now, ExpiresAt: now.Add(st.max), IdleUntil: now.Add(st.idle),
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// get returns the live session with this id, nil for none; touch counts
// the request as activity (a live-update stream does not). An error is the
// store's (the database cannot be reached).
func (st *sessionStore) get(ctx context.Context, id string, touch bool) (*session, error) {
	if id == "" {
		return nil, nil
	}
	now := st.now()
	hash := auth.Hash(id)
	row, err := st.db.ConsoleSessionByHash(ctx, hash, now)
	if models.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := &session{id: id, hash: hash, csrf: row.CSRF, name: row.TokenName, notices: row.Notices, st: st, ctx: ctx}
	b, err := hex.DecodeString(row.TokenHash)
	if err != nil || len(b) != len(s.token) {
		// Not a digest this console wrote: the session is no good.
		st.log.Warn("console: a session's token digest is malformed; session ended")
		return nil, st.db.DeleteConsoleSession(ctx, hash)
	}
	copy(s.token[:], b)
	if touch && now.Add(st.idle).Sub(row.IdleUntil) >= st.touchEvery() {
		if err := st.db.TouchConsoleSession(ctx, hash, now.Add(st.idle)); err != nil {
			// The request goes on; the idle end moves at the next one.
			st.log.Warn("console: touching a session failed", "err", err)
		}
	}
	return s, nil
}

// drop ends a session.
func (st *sessionStore) drop(ctx context.Context, s *session) error {
	return st.db.DeleteConsoleSession(ctx, s.hash)
}

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opt.SecureCookies }

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode,
	})
}

// sessionOf returns the request's live session, nil for none; an error
// means the store could not say.
func (c *Console) sessionOf(r *http.Request, touch bool) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	return c.sessions.get(r.Context(), ck.Value, touch)
}

// endSession ends s here and on every replica, and its live-update
// streams on this one (other replicas' streams notice at their next
// heartbeat).
func (c *Console) endSession(ctx context.Context, s *session) error {
	err := c.sessions.drop(ctx, s)
	c.hub.endSession(s.id)
	return err
}

// stillLive reports whether a live-update stream's session and token are
// still good. A store that cannot answer keeps the stream: the next
// heartbeat asks again.
func (c *Console) stillLive(ctx context.Context, s *session) bool {
	now, err := c.sessions.get(ctx, s.id, false)
	if err != nil {
		return true
	}
	if now == nil {
		return false
	}
	_, err = c.opt.Verifier.VerifyDigest(ctx, s.token)
	return !errors.Is(err, auth.ErrUnknownToken)
}

const unavailableMsg = "fsplane cannot check your session right now (database unavailable); try again shortly."

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
		s, err := c.sessionOf(r, r.URL.Path != "/ui/events")
		if err != nil {
			c.log.Warn("console: session check failed", "err", err)
			c.errorPage(w, nil, http.StatusServiceUnavailable, unavailableMsg)
			return
		}
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
		p, err := c.opt.Verifier.VerifyDigest(r.Context(), s.token)
		if errors.Is(err, auth.ErrUnknownToken) {
			c.met.refused.WithLabelValues("token").Inc()
			_ = c.endSession(r.Context(), s) // best effort: it cannot verify anywhere anyway
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
	s, err := c.sessionOf(r, true)
	if err != nil {
		c.errorPage(w, nil, http.StatusServiceUnavailable, unavailableMsg)
		return
	}
	if s == nil {
		c.toLogin(w, r)
		return
	}
	p, err := c.opt.Verifier.VerifyDigest(r.Context(), s.token)
	if errors.Is(err, auth.ErrUnknownToken) {
		_ = c.endSession(r.Context(), s)
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
	if s, _ := c.sessionOf(r, false); s != nil {
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
	wait, failed := c.throttle.try(source(r.RemoteAddr))
	if wait > 0 {
		c.met.logins.WithLabelValues("throttled").Inc()
		secs := int((wait + time.Second - 1) / time.Second)
		c.log.Warn("console: login throttled after repeated failures", "remote", r.RemoteAddr, "retry_after_s", secs)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		c.renderLogin(w, r, http.StatusTooManyRequests,
			fmt.Sprintf("Too many failed logins from your address: try again in %d seconds.", secs))
		return
	}
	p, err := c.opt.Verifier.Verify(r.Context(), token)
	if errors.Is(err, auth.ErrUnknownToken) {
		failed()
		c.met.logins.WithLabelValues("unknown").Inc()
		c.log.Info("console: login with an unknown or expired token", "remote", r.RemoteAddr)
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
	if old, _ := c.sessionOf(r, false); old != nil {
		if err := c.endSession(r.Context(), old); err != nil {
			c.log.Warn("console: ending the previous session at login failed", "err", err)
		}
	}
	s, err := c.sessions.create(r.Context(), auth.Digest(token), p.Name)
	if err != nil {
		c.met.logins.WithLabelValues("unavailable").Inc()
		c.log.Warn("console: storing a session failed", "err", err)
		c.renderLogin(w, r, http.StatusServiceUnavailable, "fsplane cannot store your session right now (database unavailable); try again shortly.")
		return
	}
	c.met.logins.WithLabelValues("ok").Inc()
	c.setCookie(w, r, loginCookie, "", "/ui/login", -1)
	c.setCookie(w, r, sessionCookie, s.id, Path, int(c.opt.MaxAge/time.Second))
	c.log.Info("console: login", "token", p.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	s, err := c.sessionOf(r, false)
	if err != nil {
		c.errorPage(w, nil, http.StatusServiceUnavailable, "fsplane cannot end your session right now (database unavailable); try again shortly.")
		return
	}
	if s != nil {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil || !sameText(r.PostForm.Get("csrf"), s.csrf) {
			c.errorPage(w, s, http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again.")
			return
		}
		if err := c.endSession(r.Context(), s); err != nil {
			// The cookie must not be dropped while the session lives on:
			// the operator would believe they had logged out.
			c.log.Warn("console: logout failed", "err", err)
			c.errorPage(w, s, http.StatusServiceUnavailable, "fsplane cannot end your session right now (database unavailable); try again shortly.")
			return
		}
	}
	c.setCookie(w, r, sessionCookie, "", Path, -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
