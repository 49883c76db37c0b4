package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/fsplane/fsplane/auth"
)

// view is what every page template gets.
type view struct {
	Title string
	Nav   string // the active navigation entry
	Who   string // the token's name
	CSRF  string
	// What the token may do: pages show only the controls it allows.
	CanRead, CanWrite, CanFirewall, CanAdmin bool
	Flash                                    []string
	Data                                     any
}

func (c *Console) view(r *request, title, nav string, data any) view {
	return view{
		Title: title, Nav: nav, Who: r.p.Name, CSRF: r.s.csrf,
		CanRead: r.p.Allows(auth.ScopeSIPRead), CanWrite: r.p.Allows(auth.ScopeSIPWrite),
		CanFirewall: r.p.Allows(auth.ScopeFirewallRead), CanAdmin: r.p.Allows(auth.ScopeAdmin),
		Flash: r.s.takeFlash(), Data: data,
	}
}

var funcs = template.FuncMap{
	"join": strings.Join,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	// dict3 hands a form field's name, label and form to the "input"
	// template.
	"dict3": func(name, label string, f formView) inputView {
		return inputView{ID: name, Name: name, Label: label, Type: "text", Form: f}
	},
	// dict4 is dict3 for a page with several forms: ids get a prefix.
	"dict4": func(prefix, name, label string, f formView) inputView {
		return inputView{ID: prefix + "-" + name, Name: name, Label: label, Type: "text", Form: f}
	},
	// field returns a form's error for a field ("" for none).
	"field": func(errs map[string]string, name string) string { return errs[name] },
}

// parsePages builds one template set per page: the layout and the page's
// "content".
func parsePages() (map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimPrefix(f, "templates/")
		if name == "layout.html" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, code int, page string, data any) {
	t := c.pages[page]
	var buf bytes.Buffer
	if t == nil {
		c.log.Error("console: no such page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	root := "layout"
	if page == "login.html" {
		root = "login"
	}
	if err := t.ExecuteTemplate(&buf, root, data); err != nil {
		c.log.Error("console: rendering failed", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// inputView is one text field of a form.
type inputView struct {
	ID, Name, Label, Type string
	Form                  formView
}

type errorData struct{ Message string }

// errorPage shows msg with the navigation when there is a session.
func (c *Console) errorPage(w http.ResponseWriter, s *session, code int, msg string) {
	v := view{Title: http.StatusText(code), Data: errorData{Message: msg}}
	if s != nil {
		v.CSRF, v.Who = s.csrf, s.name
	}
	c.render(w, code, "error.html", v)
}

// page renders a page for an authenticated request.
func (c *Console) page(w http.ResponseWriter, r *request, code int, page, title, nav string, data any) {
	c.render(w, code, page, c.view(r, title, nav, data))
}
