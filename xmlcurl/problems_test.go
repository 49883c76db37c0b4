package xmlcurl

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// TestRowsPastTheAPIAreNeverInvisible: rows another writer stored that
// cannot be rendered exactly are found by the start-up audit, counted in
// fsplane_xmlcurl_unrenderable_rows, named by Health (so /readyz warns) and
// by ExtensionProblem / TrunkProblems (render_error in the API), and
// forgotten once fixed or deleted.
func TestRowsPastTheAPIAreNeverInvisible(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		reg := prometheus.NewRegistry()
		f := newFixture(t, backend, Options{Registerer: reg})
		seed(t, f.s)
		ctx := context.Background()
		lab, err := f.s.ProfileByName(ctx, "lab")
		if err != nil {
			t.Fatal(err)
		}
		lab.Params = models.StringMap{"dtmf-type": "rfc2833"} // the seed's refused settings, gone
		if err := f.s.UpdateProfile(ctx, lab); err != nil {
			t.Fatal(err)
		}
		u, err := f.s.ExtensionByUser(ctx, "127.0.0.1", "1002") // seeded without a password
		if err != nil {
			t.Fatal(err)
		}
		u.Password = ptr("now-with-password")
		if err := f.s.UpdateExtension(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := f.h.Audit(ctx); err != nil {
			t.Fatal(err)
		}
		if st, detail := f.h.Health(); st != "ok" {
			t.Fatalf("clean data: health %s %s", st, detail)
		}

		bad := &models.Extension{Domain: "127.0.0.1", UserID: "3000", Password: ptr("hunter2\uffffsecret"), Context: "default", Enabled: true}
		if err := f.s.CreateExtension(ctx, bad); err != nil {
			t.Fatal(err)
		}
		tr := einsUndEinsTrunk(t)
		tr.Name, tr.Password = "ffff", ptr("x\ufdd0")
		if err := f.s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.h.Audit(ctx); err != nil {
			t.Fatal(err)
		}
		st, detail := f.h.Health()
		if st != "degraded" || !strings.Contains(detail, "2 stored rows cannot be rendered") || !strings.Contains(detail, "1 extension, 1 trunk") {
			t.Fatalf("health %s %q", st, detail)
		}
		// /readyz is public: no row names, reasons or values there.
		if strings.Contains(detail, "hunter2") || strings.Contains(detail, "3000@") || strings.Contains(detail, "ffff") {
			t.Fatalf("health names rows or values: %q", detail)
		}
		probs := f.h.Problems()
		if len(probs) != 2 || probs[0].Name != "3000@127.0.0.1" || !strings.Contains(probs[0].Reason, "U+FFFF") || probs[1].Name != "ffff" {
			t.Fatalf("problems %+v", probs)
		}
		for kind, want := range map[string]float64{models.KindExtension: 1, models.KindTrunk: 1} {
			if got := testutil.ToFloat64(f.h.m.unrenderable.WithLabelValues(kind)); got != want {
				t.Errorf("unrenderable_rows{kind=%s} = %v, want %v", kind, got, want)
			}
		}
		if why := f.h.ExtensionProblem(bad); !strings.Contains(why, "U+FFFF") {
			t.Errorf("ExtensionProblem = %q", why)
		}
		if whys, err := f.h.TrunkProblems(ctx, []models.Trunk{*tr}); err != nil || len(whys) != 1 || !strings.Contains(whys[0], "U+FDD0") {
			t.Errorf("TrunkProblems = %q, %v", whys, err)
		}

		// Fixed and deleted: forgotten.
		bad.Password = ptr("password-fixed")
		if err := f.s.UpdateExtension(ctx, bad); err != nil {
			t.Fatal(err)
		}
		if _, body := f.post(t, sipAuth("3000", "127.0.0.1")); isNotFound(body) {
			t.Fatalf("fixed user still left out:\n%s", body)
		}
		if err := f.s.DeleteTrunk(ctx, tr.ID, 0); err != nil {
			t.Fatal(err)
		}
		if st, detail := f.h.Health(); st != "ok" {
			t.Fatalf("after the fix: health %s %q", st, detail)
		}
		if got := testutil.ToFloat64(f.h.m.unrenderable.WithLabelValues(models.KindTrunk)); got != 0 {
			t.Errorf("unrenderable_rows{kind=trunk} = %v after the delete", got)
		}
	})
}
