package esl

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/fsplane/fsplane/models"
)

type wantPlan struct {
	start, rescan, restart []string
	kill                   map[string]killStep
	reloadACL              bool
	flush                  []userKey
	refused, notices       int
}

func (w wantPlan) check(t *testing.T, p *plan) {
	t.Helper()
	keys := func(m map[string]bool) []string { return sortedKeys(m) }
	norm := func(s []string) []string {
		if len(s) == 0 {
			return []string{}
		}
		slices.Sort(s)
		return s
	}
	if got := keys(p.start); !reflect.DeepEqual(norm(got), norm(w.start)) {
		t.Errorf("start %v, want %v", got, w.start)
	}
	if got := keys(p.rescan); !reflect.DeepEqual(norm(got), norm(w.rescan)) {
		t.Errorf("rescan %v, want %v", got, w.rescan)
	}
	if got := keys(p.restart); !reflect.DeepEqual(norm(got), norm(w.restart)) {
		t.Errorf("restart %v, want %v", got, w.restart)
	}
	if w.kill == nil {
		w.kill = map[string]killStep{}
	}
	if !reflect.DeepEqual(p.kill, w.kill) {
		t.Errorf("kill %v, want %v", p.kill, w.kill)
	}
	if p.reloadACL != w.reloadACL {
		t.Errorf("reloadacl %v, want %v", p.reloadACL, w.reloadACL)
	}
	if got := sortedUsers(p.flush); len(got) != len(w.flush) || (len(got) > 0 && !reflect.DeepEqual(got, w.flush)) {
		t.Errorf("flush %v, want %v", got, w.flush)
	}
	if len(p.refused) != w.refused || len(p.notices) != w.notices {
		t.Errorf("refused %v notices %v, want %d and %d", p.refused, p.notices, w.refused, w.notices)
	}
}

func TestPlanner(t *testing.T) {
	hosts := map[uint][]string{1: nil, 2: {"fs1"}, 3: {"fs2"}}
	env := planEnv{switchname: "fs1", trunkHosts: func(id uint) ([]string, bool, error) {
		h, ok := hosts[id]
		return h, ok, nil
	}}
	restartEnv := env
	restartEnv.allowRestart = true
	trunk := func(op string, id uint) models.ChangeEvent {
		return models.ChangeEvent{Kind: models.KindTrunk, Op: op, ObjectID: id, Name: "plusnet",
			OldProfile: "external-ipv4", NewProfile: "external-ipv4", OldEnabled: true, NewEnabled: true,
			Fields: models.StringList{"proxy"}}
	}
	with := func(ev models.ChangeEvent, f func(*models.ChangeEvent)) models.ChangeEvent { f(&ev); return ev }
	prof := models.ChangeEvent{Kind: models.KindProfile, Op: models.OpUpdate, Name: "internal",
		OldProfile: "internal", NewProfile: "internal", OldEnabled: true, NewEnabled: true}

	cases := []struct {
		name string
		evs  []models.ChangeEvent
		env  planEnv
		want wantPlan
	}{
		{"new trunk rescans", []models.ChangeEvent{with(trunk(models.OpCreate, 1), func(e *models.ChangeEvent) {
			e.OldProfile, e.OldEnabled, e.Fields = "", false, nil
		})}, env, wantPlan{rescan: []string{"external-ipv4"}}},
		{"new disabled trunk: nothing", []models.ChangeEvent{with(trunk(models.OpCreate, 1), func(e *models.ChangeEvent) {
			e.NewEnabled, e.OldEnabled = false, false
		})}, env, wantPlan{}},
		{"changed trunk: killgw then rescan", []models.ChangeEvent{trunk(models.OpUpdate, 1)}, env,
			wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}, rescan: []string{"external-ipv4"}}},
		{"registering trunk waits for its delete", []models.ChangeEvent{with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
			e.Register = true
		})}, env, wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4", wait: true}}, rescan: []string{"external-ipv4"}}},
		{"register switched on: the old one did not register", []models.ChangeEvent{with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
			e.Register, e.Fields = true, models.StringList{"register"}
		})}, env, wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}, rescan: []string{"external-ipv4"}}},
		{"register switched off: the old one did", []models.ChangeEvent{with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
			e.Register, e.Fields = false, models.StringList{"register"}
		})}, env, wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4", wait: true}}, rescan: []string{"external-ipv4"}}},
		{"moved trunk: both profiles rescanned", []models.ChangeEvent{with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
			e.NewProfile, e.Fields = "internal", models.StringList{"profile"}
		})}, env, wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}, rescan: []string{"external-ipv4", "internal"}}},
		{"renamed trunk: old name killed", []models.ChangeEvent{with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
			e.OldName, e.Fields = "plusnet-old", models.StringList{"name"}
		})}, env, wantPlan{kill: map[string]killStep{"plusnet-old": {profile: "external-ipv4"}}, rescan: []string{"external-ipv4"}}},
		{"disabled trunk: killgw only", []models.ChangeEvent{with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
			e.NewEnabled, e.Fields = false, models.StringList{"enabled"}
		})}, env, wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}}},
		{"enabled trunk: rescan only", []models.ChangeEvent{with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
			e.OldEnabled, e.Fields = false, models.StringList{"enabled"}
		})}, env, wantPlan{rescan: []string{"external-ipv4"}}},
		{"deleted trunk: killgw", []models.ChangeEvent{with(trunk(models.OpDelete, 9), func(e *models.ChangeEvent) {
			e.NewProfile, e.NewEnabled, e.Fields = "", false, nil
		})}, env, wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}}},
		{"description only: nothing", []models.ChangeEvent{with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
			e.Cosmetic, e.Fields = true, models.StringList{"description"}
		})}, env, wantPlan{}},
		{"trunk for this node", []models.ChangeEvent{trunk(models.OpUpdate, 2)}, env,
			wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}, rescan: []string{"external-ipv4"}}},
		{"trunk for another node: nothing", []models.ChangeEvent{trunk(models.OpUpdate, 3)}, env, wantPlan{}},
		{"trunk moved away from this node: killgw", []models.ChangeEvent{with(trunk(models.OpUpdate, 3), func(e *models.ChangeEvent) {
			e.Fields = models.StringList{"hostnames"}
		})}, env, wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}}},
		{"unknown switchname: every trunk belongs", []models.ChangeEvent{trunk(models.OpUpdate, 3)}, planEnv{trunkHosts: env.trunkHosts},
			wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}, rescan: []string{"external-ipv4"}}},
		{"trunk gone since: killgw, no rescan", []models.ChangeEvent{trunk(models.OpUpdate, 77)}, env,
			wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}}}},
		{"a burst folds into one rescan per profile", []models.ChangeEvent{
			trunk(models.OpUpdate, 1), trunk(models.OpUpdate, 1),
			with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) { e.Name = "sipgate" }),
			with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) {
				e.Name = "einsundeins"
				e.OldProfile, e.NewProfile = "internal", "internal"
			}),
		}, env, wantPlan{kill: map[string]killStep{"plusnet": {profile: "external-ipv4"}, "sipgate": {profile: "external-ipv4"},
			"einsundeins": {profile: "internal"}}, rescan: []string{"external-ipv4", "internal"}}},
		{"provider range: reloadacl", []models.ChangeEvent{{Kind: models.KindProviderRange, Op: models.OpCreate, Name: "plusnet"}}, env,
			wantPlan{reloadACL: true}},
		{"provider range description: nothing", []models.ChangeEvent{{Kind: models.KindProviderRange, Op: models.OpUpdate, Name: "plusnet",
			Cosmetic: true, Fields: models.StringList{"description"}}}, env, wantPlan{}},
		{"extension changed: cache flushed", []models.ChangeEvent{{Kind: models.KindExtension, Op: models.OpUpdate, Name: "1001@pbx.example.com",
			Fields: models.StringList{"password"}}}, env, wantPlan{flush: []userKey{{"1001", "pbx.example.com"}}}},
		{"extension renamed: both flushed", []models.ChangeEvent{{Kind: models.KindExtension, Op: models.OpUpdate, Name: "1002@pbx.example.com",
			OldName: "1001@pbx.example.com", Fields: models.StringList{"user_id"}}}, env,
			wantPlan{flush: []userKey{{"1001", "pbx.example.com"}, {"1002", "pbx.example.com"}}}},
		{"new extension: nothing (not cached yet)", []models.ChangeEvent{{Kind: models.KindExtension, Op: models.OpCreate, Name: "1001@pbx.example.com"}}, env,
			wantPlan{}},
		{"new profile: started", []models.ChangeEvent{{Kind: models.KindProfile, Op: models.OpCreate, Name: "wss"}}, env,
			wantPlan{start: []string{"wss"}}},
		{"profile binding, restarts allowed", []models.ChangeEvent{with(prof, func(e *models.ChangeEvent) {
			e.Fields = models.StringList{"ext_sip_ip"}
		})}, restartEnv, wantPlan{restart: []string{"internal"}}},
		{"profile binding, restarts not allowed: reported", []models.ChangeEvent{with(prof, func(e *models.ChangeEvent) {
			e.Fields = models.StringList{"sip_port"}
		})}, env, wantPlan{notices: 1}},
		{"profile setting: rescan", []models.ChangeEvent{with(prof, func(e *models.ChangeEvent) {
			e.Fields = models.StringList{"auth_calls", "description"}
		})}, restartEnv, wantPlan{rescan: []string{"internal"}}},
		{"profile description: nothing", []models.ChangeEvent{with(prof, func(e *models.ChangeEvent) {
			e.Fields, e.Cosmetic = models.StringList{"description"}, true
		})}, restartEnv, wantPlan{}},
		{"injection in names is refused", []models.ChangeEvent{
			with(trunk(models.OpUpdate, 1), func(e *models.ChangeEvent) { e.Name = "x\n\napi fsctl shutdown" }),
			with(trunk(models.OpCreate, 1), func(e *models.ChangeEvent) { e.NewProfile = "internal killgw _all_" }),
			{Kind: models.KindExtension, Op: models.OpDelete, Name: "1001 x@pbx.example.com"},
		}, env, wantPlan{rescan: []string{"external-ipv4"}, refused: 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPlan()
			for i, ev := range c.evs {
				ev.ID = uint64(i + 1)
				if err := p.add(ev, c.env); err != nil {
					t.Fatal(err)
				}
			}
			c.want.check(t, p)
			if len(p.ids) != len(c.evs) {
				t.Errorf("ids %v", p.ids)
			}
		})
	}
}

func TestPlannerLookupErrorLeavesChangeOut(t *testing.T) {
	boom := errors.New("database away")
	p := newPlan()
	err := p.add(models.ChangeEvent{ID: 4, Kind: models.KindTrunk, Op: models.OpUpdate, Name: "plusnet", OldEnabled: true, NewEnabled: true},
		planEnv{trunkHosts: func(uint) ([]string, bool, error) { return nil, false, boom }})
	if !errors.Is(err, boom) || len(p.ids) != 0 || !p.empty() {
		t.Fatalf("%v %+v", err, p)
	}
}

func TestSyncPlan(t *testing.T) {
	p := newPlan()
	p.addSync([]models.Profile{{Name: "internal"}, {Name: "external-ipv4"}, {Name: "wss"}},
		[]models.Trunk{
			{Name: "plusnet", Profile: "external-ipv4", Enabled: true},
			{Name: "einsundeins", Profile: "internal", Enabled: true, Hostnames: models.StringList{"FS1"}},
			{Name: "elsewhere", Profile: "wss", Enabled: true, Hostnames: models.StringList{"fs2"}},
		}, "fs1")
	wantPlan{start: []string{"external-ipv4", "internal", "wss"}, rescan: []string{"external-ipv4", "internal"}, reloadACL: true}.check(t, p)
	if !p.loadSofia {
		t.Fatal("sync does not check mod_sofia")
	}
}
