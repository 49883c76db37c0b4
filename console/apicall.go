package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/fsplane/fsplane/auth"
)

// apiResp is the API's answer to an in-process request.
type apiResp struct {
	Code   int
	Header http.Header
	Body   []byte
}

// recorder is the ResponseWriter the API writes into.
type recorder struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.buf.Write(p)
}

// call makes a request to the API as the session's principal (verified
// for this request; the session keeps no token text to send as bearer),
// from the browser's own address (the audit log's remote_ip). body, when
// not nil, is sent as JSON; hdr adds headers (If-Match).
func (c *Console) call(r *request, method, path string, body any, hdr ...string) (*apiResp, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(auth.WithPrincipal(r.Context(), r.p), method, path, rd)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr = r.RemoteAddr
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		req.Header.Set("X-Forwarded-For", xff) // used only when the API trusts proxies
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := &recorder{h: http.Header{}}
	c.opt.API.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return &apiResp{Code: rec.code, Header: rec.h, Body: rec.buf.Bytes()}, nil
}

// apiError is the API's error body.
type apiError struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields"`
}

func (a *apiResp) ok() bool { return a.Code >= 200 && a.Code < 300 }

func (a *apiResp) decode(v any) error {
	if err := json.Unmarshal(a.Body, v); err != nil {
		return fmt.Errorf("console: the API's answer (%d) is not the JSON expected: %w", a.Code, err)
	}
	return nil
}

// problem reads the API's error body.
func (a *apiResp) problem() apiError {
	var e apiError
	if json.Unmarshal(a.Body, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("the API answered %d %s", a.Code, http.StatusText(a.Code))
	}
	return e
}

// setProblem puts the API's refusal on the form: each field error beside
// the field it names (known: the fields the form shows), the rest as lines
// above the form, and the API's message when no field carries it all.
func (f *formView) setProblem(res *apiResp, known map[string]bool) {
	pr := res.problem()
	f.Fields = pr.Fields
	f.Other = fieldList(pr.Fields, known)
	if len(pr.Fields) == 0 || len(f.Other) > 0 {
		f.Error = pr.Error
	}
}

// fieldList is a form's field errors the form has no place for, as
// "field: message" lines in a stable order.
func fieldList(fields map[string]string, shown map[string]bool) []string {
	var out []string
	for k, v := range fields {
		if !shown[k] {
			out = append(out, k+": "+v)
		}
	}
	sort.Strings(out)
	return out
}

// get reads a JSON resource from the API into v. A non-2xx answer is
// handled (an error page, or the login page for a 401) and reported as
// handled=true so the caller returns.
func (c *Console) get(w http.ResponseWriter, r *request, path string, v any) (handled bool) {
	res, err := c.call(r, http.MethodGet, path, nil)
	if err == nil && res.ok() {
		err = res.decode(v)
		if err == nil {
			return false
		}
	}
	if err != nil {
		c.log.Error("console: API read failed", "path", path, "err", err)
		c.errorPage(w, r.s, http.StatusInternalServerError, "Reading "+path+" failed.")
		return true
	}
	c.apiFailure(w, r, res)
	return true
}

// ifMatch is the If-Match header for the version the form was rendered
// with, none when it carries no version.
func ifMatch(r *request) []string {
	if v := r.PostForm.Get("version"); v != "" {
		return []string{"If-Match", `"` + v + `"`}
	}
	return nil
}

// write sends a write the form asked for (with its If-Match). It answers
// a failure itself and returns nil then; on success the caller answers.
func (c *Console) write(w http.ResponseWriter, r *request, method, path string, body any) *apiResp {
	res, err := c.call(r, method, path, body, ifMatch(r)...)
	if err != nil {
		c.errorPage(w, r.s, http.StatusInternalServerError, "The request could not be made.")
		return nil
	}
	if !res.ok() {
		c.apiFailure(w, r, res)
		return nil
	}
	return res
}

// done flashes msg and leads back to page after a successful write.
func done(w http.ResponseWriter, r *request, msg, page string) {
	r.s.addFlash(msg)
	http.Redirect(w, r.Request, page, http.StatusSeeOther)
}

// apiFailure shows an API error that no form field can hold.
func (c *Console) apiFailure(w http.ResponseWriter, r *request, res *apiResp) {
	if res.Code == http.StatusUnauthorized {
		_ = c.endSession(r.Context(), r.s)
		c.toLogin(w, r.Request)
		return
	}
	p := res.problem()
	msg := p.Error
	if len(p.Fields) > 0 {
		msg += " (" + strings.Join(fieldList(p.Fields, nil), "; ") + ")"
	}
	c.errorPage(w, r.s, res.Code, msg)
}
