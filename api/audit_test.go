package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/models/modelstest"
)

// The audit filters select in the database, so a filtered page is full
// however far back its events lie, and next_before pages on within the
// filter.
func TestAuditFilters(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		ev := newEnv(t, backend)
		w, admin := ev.tokens["sip:write"], ev.tokens["admin"]
		var plusnetID any
		for _, n := range []string{"plusnet-a", "other", "plusnet-b"} {
			out := ev.do("POST", "/api/v1/sip/trunks", w, map[string]any{"preset": "plusnet", "name": n}).want(t, http.StatusCreated).JSON(t)
			if n == "plusnet-a" {
				plusnetID = out["id"]
			}
		}
		ev.do("PATCH", "/api/v1/sip/trunks/plusnet-a", w, map[string]any{"description": "main"}).want(t, http.StatusOK)
		// Many newer events of another kind: the trunk events lie behind them.
		for i := range 30 {
			ev.do("POST", "/api/v1/sip/extensions", w, map[string]any{"domain": "pbx.example", "user_id": fmt.Sprint(100 + i),
				"password": "Secret-Passw0rd-" + fmt.Sprint(i)}).want(t, http.StatusCreated)
		}
		list := func(q string) ([]string, any) {
			t.Helper()
			page := ev.do("GET", "/api/v1/audit?"+q, admin, nil).want(t, http.StatusOK).JSON(t)
			var got []string
			for _, it := range page["items"].([]any) {
				m := it.(map[string]any)
				got = append(got, fmt.Sprint(m["kind"], " ", m["action"], " ", m["name"]))
			}
			return got, page["next_before"]
		}
		for q, want := range map[string][]string{
			"kind=trunk&limit=10":                            {"trunk update plusnet-a", "trunk create plusnet-b", "trunk create other", "trunk create plusnet-a"},
			"kind=trunk&action=create&limit=10":              {"trunk create plusnet-b", "trunk create other", "trunk create plusnet-a"},
			"action=update":                                  {"trunk update plusnet-a"},
			"kind=trunk&object_id=" + fmt.Sprint(plusnetID):  {"trunk update plusnet-a", "trunk create plusnet-a"},
			"name=plusnet-":                                  {"trunk update plusnet-a", "trunk create plusnet-b", "trunk create plusnet-a"},
			"kind=extension&name=" + url.QueryEscape("129@"): {"extension create 129@pbx.example"},
			"kind=registration":                              nil,
		} {
			if got, _ := list(q); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s:\n%v\nwant\n%v", q, got, want)
			}
		}
		// Paging within the filter.
		first, next := list("kind=trunk&limit=3")
		if len(first) != 3 || next == nil || fmt.Sprint(next) == "0" {
			t.Fatalf("first filtered page %v, next_before %v", first, next)
		}
		rest, last := list(fmt.Sprintf("kind=trunk&limit=3&before=%v", next))
		if fmt.Sprint(rest) != "[trunk create plusnet-a]" || fmt.Sprint(last) != "0" {
			t.Errorf("second filtered page %v (next_before %v), want the oldest trunk event and no further page", rest, last)
		}

		// Invalid filters: 422 naming the field, nothing listed.
		for q, field := range map[string]string{
			"kind=trunks":                      "kind",
			"kind=":                            "", // empty is no filter
			"action=remove":                    "action",
			"object_id=3":                      "object_id",
			"kind=trunk&object_id=x":           "object_id",
			"kind=trunk&object_id=0":           "object_id",
			"name=" + strings.Repeat("n", 513): "name",
			"name=%ff":                         "name",
			"name=%00":                         "name",
			"name=a%0Ab":                       "name",
			"kind=x&action=y":                  "action",
		} {
			r := ev.do("GET", "/api/v1/audit?"+q, admin, nil)
			if field == "" {
				r.want(t, http.StatusOK)
				continue
			}
			r.want(t, http.StatusUnprocessableEntity)
			if f := r.Fields(t); f[field] == "" {
				t.Errorf("%s: fields %v do not name %s", q, f, field)
			}
		}
		if f := ev.do("GET", "/api/v1/audit?kind=trunks", admin, nil).Fields(t); !strings.Contains(f["kind"], "provider_range") {
			t.Errorf("the kind error does not list the valid kinds: %q", f["kind"])
		}
		// Still admin only.
		ev.do("GET", "/api/v1/audit?kind=trunk", ev.tokens["sip:read"], nil).want(t, http.StatusForbidden)
	})
}

// A request made in-process for a verified principal (the console's) needs
// no Authorization header, gets that principal's scopes and nothing more,
// and is audited under its name.
func TestInProcessPrincipal(t *testing.T) {
	ev := newEnv(t, "sqlite")
	do := func(p auth.Principal, method, path, body string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = "198.51.100.7:5000"
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req = req.WithContext(auth.WithPrincipal(req.Context(), p))
		rec := httptest.NewRecorder()
		ev.e.ServeHTTP(rec, req)
		return rec
	}
	reader := auth.Principal{TokenID: 90, Name: "console-reader", Scopes: []string{auth.ScopeSIPRead}}
	writer := auth.Principal{TokenID: 91, Name: "console-writer", Scopes: []string{auth.ScopeSIPWrite}}
	if rec := do(reader, "GET", "/api/v1/sip/trunks", ""); rec.Code != http.StatusOK {
		t.Fatalf("read with an in-process principal: %d %s", rec.Code, rec.Body)
	}
	body := `{"preset":"plusnet","name":"pn"}`
	if rec := do(reader, "POST", "/api/v1/sip/trunks", body); rec.Code != http.StatusForbidden {
		t.Fatalf("write with a read-only in-process principal: %d, want 403", rec.Code)
	}
	if rec := do(writer, "POST", "/api/v1/sip/trunks", body); rec.Code != http.StatusCreated {
		t.Fatalf("write with an in-process principal: %d %s", rec.Code, rec.Body)
	}
	evs, err := ev.store.ListAudit(context.Background(), 0, 1)
	if err != nil || len(evs) != 1 || evs[0].Actor != "console-writer" || evs[0].RemoteIP != "198.51.100.7" {
		t.Fatalf("audit of the in-process write: %+v %v", evs, err)
	}
	// Without one, the header is what counts.
	ev.do("GET", "/api/v1/sip/trunks", "", nil).want(t, http.StatusUnauthorized)
}
