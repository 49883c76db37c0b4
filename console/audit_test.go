package console_test

import (
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
)

var olderRE = regexp.MustCompile(`<a href="([^"]*)" id="audit-older">`)

// The audit page filters through the API: events far behind the newest
// ones are found, a filtered page is full, its pages carry the filter, and
// a filter the API refuses comes back with the error beside its field.
func TestAuditPageFilters(t *testing.T) {
	ev := newEnv(t)
	// 130 trunk events, then 600 newer ones of another kind in front of
	// them, written in one batch.
	var evs []models.AuditEvent
	for i := range 130 {
		evs = append(evs, models.AuditEvent{Action: models.OpUpdate, Kind: models.KindTrunk, ObjectID: uint(1 + i%2), Name: fmt.Sprintf("trunk-%d", 1+i%2)})
	}
	evs = append(evs, models.AuditEvent{Action: models.OpCreate, Kind: models.KindTrunk, ObjectID: 3, Name: "<b>hostile</b>"})
	for i := range 600 {
		evs = append(evs, models.AuditEvent{Action: models.ActionReadSecret, Kind: models.KindExtension, ObjectID: 9, Name: fmt.Sprintf("%d@pbx.example", i)})
	}
	for i := range evs {
		evs[i].At, evs[i].Actor, evs[i].Fields = ev.clock.Now(), "tester", models.StringList{}
	}
	if err := ev.store.DB().CreateInBatches(evs, 200).Error; err != nil {
		t.Fatal(err)
	}
	b := ev.browser()
	b.login(ev.tokens["admin"])
	rows := func(p *page) int { return strings.Count(p.Body, "<tr><td>") }

	p := b.get("/ui/audit?kind=trunk&action=update").want(t, http.StatusOK)
	if n := rows(p); n != 100 {
		t.Fatalf("first filtered page: %d rows, want 100", n)
	}
	if strings.Contains(p.Body, "<td>extension</td>") || !strings.Contains(p.Body, `<option value="trunk" selected>`) ||
		!strings.Contains(p.Body, `<option value="update" selected>`) {
		t.Errorf("the page lets other events through or does not show the filter:\n%s", p.Body)
	}
	m := olderRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no link to older events:\n%s", p.Body)
	}
	older := html.UnescapeString(m[1])
	if !strings.Contains(older, "kind=trunk") || !strings.Contains(older, "action=update") || !strings.Contains(older, "before=") {
		t.Fatalf("the older page's link %q drops the filter", older)
	}
	p = b.get(older).want(t, http.StatusOK)
	if n := rows(p); n != 30 || olderRE.MatchString(p.Body) || !strings.Contains(p.Body, `id="audit-newest"`) {
		t.Errorf("second page: %d rows (want 30), older link %v, newest link %v", n, olderRE.MatchString(p.Body), strings.Contains(p.Body, `id="audit-newest"`))
	}

	// One resource's history, by kind and id, as each row links it.
	p = b.get("/ui/audit?kind=trunk&object_id=3").want(t, http.StatusOK)
	if rows(p) != 1 || !strings.Contains(p.Body, "&lt;b&gt;hostile&lt;/b&gt;") || strings.Contains(p.Body, "<b>hostile") {
		t.Errorf("history of trunk 3: %d rows, or the name is not escaped:\n%s", rows(p), p.Body)
	}
	if !strings.Contains(p.Body, `href="/ui/audit?kind=trunk&amp;object_id=3"`) {
		t.Errorf("the row does not link its resource's history:\n%s", p.Body)
	}
	// Name contains.
	if p = b.get("/ui/audit?name=599%40pbx").want(t, http.StatusOK); rows(p) != 1 {
		t.Errorf("name filter: %d rows, want 1", rows(p))
	}
	if p = b.get("/ui/audit?kind=token&action=delete").want(t, http.StatusOK); rows(p) != 0 || !strings.Contains(p.Body, "No events match the filter.") {
		t.Errorf("empty filter result:\n%s", p.Body)
	}

	// Refused filters: 422, the error beside its field, the form kept.
	p = b.get("/ui/audit?kind=trunks")
	if p.Code != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="err-kind"`) {
		t.Errorf("bad kind: %d\n%s", p.Code, p.Body)
	}
	p = b.get("/ui/audit?object_id=3&name=x")
	if p.Code != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="err-object_id"`) || !strings.Contains(p.Body, `value="x"`) {
		t.Errorf("object_id without kind: %d\n%s", p.Code, p.Body)
	}
	p = b.get("/ui/audit?before=x")
	if p.Code != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="other-errors"`) || !strings.Contains(p.Body, "before:") {
		t.Errorf("bad before: %d\n%s", p.Code, p.Body)
	}
	// The filter is a plain GET form: it works without JavaScript.
	if !strings.Contains(p.Body, `<form method="get" action="/ui/audit" class="filter" id="audit-filter">`) {
		t.Errorf("no GET filter form:\n%s", p.Body)
	}
}
