package console

import (
	"net/http"
	"strconv"
)

type extension struct {
	ID          uint   `json:"id"`
	Version     int64  `json:"version"`
	Domain      string `json:"domain"`
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name"`
	CallerID    string `json:"caller_id"`
	Context     string `json:"context"`
	Enabled     bool   `json:"enabled"`
	Description string `json:"description"`
	RenderError string `json:"render_error"`
}

type extensionsData struct {
	Items []extension
	Total int64
	Form  formView
}

var extensionFields = map[string]bool{"domain": true, "user_id": true, "password": true, "display_name": true,
	"caller_id": true, "description": true}

func (c *Console) extensionsPage(w http.ResponseWriter, r *request) {
	c.renderExtensions(w, r, http.StatusOK, formView{Values: map[string]string{}})
}

func (c *Console) renderExtensions(w http.ResponseWriter, r *request, code int, f formView) {
	var list struct {
		Items []extension `json:"items"`
		Total int64       `json:"total"`
	}
	if c.get(w, r, "/api/v1/sip/extensions?limit=1000", &list) {
		return
	}
	c.page(w, r, code, "extensions.html", "Extensions", "extensions", extensionsData{Items: list.Items, Total: list.Total, Form: f})
}

func (c *Console) createExtension(w http.ResponseWriter, r *request) {
	form := r.PostForm
	body := map[string]any{"domain": form.Get("domain"), "user_id": form.Get("user_id"), "password": form.Get("password")}
	for _, k := range []string{"display_name", "caller_id", "description"} {
		if v := form.Get(k); v != "" {
			body[k] = v
		}
	}
	res, err := c.call(r, http.MethodPost, "/api/v1/sip/extensions", body)
	if err != nil {
		c.errorPage(w, r.s, http.StatusInternalServerError, "The request could not be made.")
		return
	}
	if res.Code == http.StatusCreated {
		var out extension
		_ = res.decode(&out)
		r.s.addFlash("Extension " + out.UserID + "@" + out.Domain + " created.")
		http.Redirect(w, r.Request, "/ui/extensions", http.StatusSeeOther)
		return
	}
	if res.Code == http.StatusUnauthorized {
		c.apiFailure(w, r, res)
		return
	}
	f := formView{Values: map[string]string{}}
	for k := range extensionFields {
		if k != "password" {
			f.Values[k] = form.Get(k)
		}
	}
	f.setProblem(res, extensionFields)
	c.renderExtensions(w, r, res.Code, f)
}

func extensionPath(r *request) (string, bool) {
	id := r.PathValue("id")
	if _, err := strconv.ParseUint(id, 10, 32); err != nil {
		return "", false
	}
	return "/api/v1/sip/extensions/" + id, true
}

func (c *Console) setExtensionEnabled(w http.ResponseWriter, r *request) {
	path, ok := extensionPath(r)
	if !ok {
		c.errorPage(w, r.s, http.StatusNotFound, "No such extension.")
		return
	}
	on := r.PostForm.Get("enabled") == "true"
	res := c.write(w, r, http.MethodPatch, path, map[string]any{"enabled": on})
	if res == nil {
		return
	}
	var out extension
	_ = res.decode(&out)
	done(w, r, "Extension "+out.UserID+"@"+out.Domain+" "+enabledWord(on)+".", "/ui/extensions")
}

func enabledWord(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

func (c *Console) deleteExtensionPage(w http.ResponseWriter, r *request) {
	path, ok := extensionPath(r)
	if !ok {
		c.errorPage(w, r.s, http.StatusNotFound, "No such extension.")
		return
	}
	var e extension
	if c.get(w, r, path, &e) {
		return
	}
	c.page(w, r, http.StatusOK, "extension_delete.html", "Delete extension "+e.UserID+"@"+e.Domain, "extensions", e)
}

func (c *Console) deleteExtension(w http.ResponseWriter, r *request) {
	path, ok := extensionPath(r)
	if !ok {
		c.errorPage(w, r.s, http.StatusNotFound, "No such extension.")
		return
	}
	if c.write(w, r, http.MethodDelete, path, nil) != nil {
		done(w, r, "Extension "+r.PostForm.Get("name")+" deleted.", "/ui/extensions")
	}
}
