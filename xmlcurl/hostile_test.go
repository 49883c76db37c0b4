package xmlcurl

import (
	"context"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// hostile is what an operator (or an attacker with API access) might
// store in a password or a display name: XML syntax, pre-processor
// syntax, runs of spaces, non-ASCII. Control characters are refused
// everywhere (names.Chars; see TestUnrenderableValues).
const hostile = "a\"b'c<d>e&f;g  h i j $${hostname} $$${x} ${domain} X-PRE-PROCESS x-pre-process <!--# --> <?php ?> <include> é€😀\U0001F9D1\u200d\U0001F4BB"

// hostileToken is hostile as far as a one-word sofia setting allows.
const hostileToken = "x-pre-process;X-PRE-PROCESS;%24%24{x};é€😀"

// TestHostileValues stores hostile names and passwords and checks every
// answer parses, passes FreeSWITCH's pre-processor unchanged and reads
// back exactly what was stored.
func TestHostileValues(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		f := newFixture(t, backend, Options{})
		seed(t, f.s)
		ctx := context.Background()

		// A user id no FreeSWITCH lookup can name exactly is refused by
		// names.User: left out, and known as a problem.
		badUser := `100"<&>$${x}`
		if err := f.s.CreateExtension(ctx, &models.Extension{Domain: "127.0.0.1", UserID: badUser, Password: ptr("secret-pw"),
			Context: "default", Enabled: true}); err != nil {
			t.Fatal(err)
		}
		if _, body := f.post(t, sipAuth(badUser, "127.0.0.1")); !isNotFound(body) {
			t.Fatalf("user %q rendered:\n%s", badUser, body)
		}
		if !hasProblem(f.h, models.KindExtension, badUser+"@127.0.0.1") {
			t.Fatalf("user %q not among the problems: %+v", badUser, f.h.Problems())
		}

		user := "+493012345"
		ext := &models.Extension{Domain: "127.0.0.1", UserID: user, Password: ptr(hostile),
			DisplayName: hostile, CallerID: "+49<&>", Context: "de$${fault}", Enabled: true}
		if err := f.s.CreateExtension(ctx, ext); err != nil {
			t.Fatal(err)
		}
		_, body := f.post(t, sipAuth(user, "127.0.0.1"))
		assertSurvivesPreprocess(t, body)
		if pw, _ := userPassword(t, body); !pw.is(hostile) {
			t.Errorf("a1-hash %q is not that of the stored password", pw.hash)
		}
		doc := parseDoc(t, body)
		if u := doc.FindElement("//domain/user"); u == nil || u.SelectAttrValue("id", "") != user {
			t.Fatalf("user id not read back:\n%s", body)
		}
		for path, want := range map[string]string{
			"//user/variables/variable effective_caller_id_name":   hostile,
			"//user/variables/variable effective_caller_id_number": "+49<&>",
			"//user/variables/variable user_context":               "de$${fault}",
		} {
			p, name, _ := strings.Cut(path, " ")
			if got, _ := paramValue(doc, p, name); got != want {
				t.Errorf("%s reads back as %q, want %q", name, got, want)
			}
		}

		tr := einsUndEinsTrunk(t)
		tr.Name = "hostile"
		tr.Password = ptr(hostile)
		tr.Username = `user"<&>`
		tr.AuthUsername = "$${x}"
		tr.FromUser = "x-pre-process"
		tr.Extension = "line1<&>line2"
		if err := f.s.CreateTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
		// A name FreeSWITCH would ignore: left out, the rest still served.
		bad := plusnetTrunk(t)
		bad.Name, bad.Profile = `evil"/><gateway name="x`, "internal"
		if err := f.s.CreateTrunk(ctx, bad); err != nil {
			t.Fatal(err)
		}
		_, body = f.post(t, gatewaysReq("internal", "vm"))
		assertSurvivesPreprocess(t, body)
		for name, want := range map[string]string{
			"password": hostile, "username": `user"<&>`, "auth-username": "$${x}",
			"from-user": "x-pre-process", "extension": "line1<&>line2",
		} {
			if got, _ := gatewayParam(t, body, "hostile", name); got != want {
				t.Errorf("gateway %s reads back as %q, want %q", name, got, want)
			}
		}
		if names := gatewayNames(t, body); strings.Join(names, ",") != "1und1,hostile" {
			t.Fatalf("gateways %q\n%s", names, body)
		}
		if !strings.Contains(f.log.String(), "evil") || strings.Contains(f.log.String(), "a\\\"b'c") {
			t.Fatalf("left-out trunk not logged, or a password logged:\n%s", f.log.String())
		}
		// Nothing in the answer may be a raw line break inside a value:
		// every line is markup from '<' to '>'.
		for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
			l := strings.TrimSpace(line)
			if !strings.HasPrefix(l, "<") || !strings.HasSuffix(l, ">") {
				t.Fatalf("raw line break inside a value: %q", line)
			}
		}

		p, err := f.s.ProfileByName(ctx, "lab")
		if err != nil {
			t.Fatal(err)
		}
		p.Params = models.StringMap{"user-agent-string": hostileToken, "accept-blind-reg": "true"}
		if err := f.s.UpdateProfile(ctx, p); err != nil {
			t.Fatal(err)
		}
		_, body = f.post(t, configReq("sofia.conf"))
		assertSurvivesPreprocess(t, body)
		sdoc := parseDoc(t, body)
		if got, _ := paramValue(sdoc, "//profile[@name='lab']/settings/param", "user-agent-string"); got != hostileToken {
			t.Fatalf("profile setting reads back as %q", got)
		}
		// Written past the API: the setting that would disable
		// authentication is left out, and the profile is a known problem.
		if _, ok := paramValue(sdoc, "//profile[@name='lab']/settings/param", "accept-blind-reg"); ok {
			t.Fatalf("accept-blind-reg rendered:\n%s", body)
		}
		if !hasProblem(f.h, models.KindProfile, "lab") {
			t.Fatalf("profile lab not among the problems: %+v", f.h.Problems())
		}
	})
}

// TestUnrenderableValues: a value XML cannot carry (a control character)
// is never silently altered: the row is left out, named in the log.
func TestUnrenderableValues(t *testing.T) {
	f := newFixture(t, "sqlite", Options{})
	seed(t, f.s)
	ctx := context.Background()
	if err := f.s.CreateExtension(ctx, &models.Extension{Domain: "127.0.0.1", UserID: "ctl",
		Password: ptr("pass\x01word"), Context: "default", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, body := f.post(t, sipAuth("ctl", "127.0.0.1")); !isNotFound(body) {
		t.Fatalf("user with a control character in its password answered:\n%s", body)
	}
	tr := einsUndEinsTrunk(t)
	tr.Name, tr.Password = "ctl", ptr("\x1b[31m")
	if err := f.s.CreateTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if _, body := f.post(t, gatewaysReq("internal", "vm")); strings.Contains(body, `"ctl"`) {
		t.Fatalf("trunk with a control character rendered:\n%s", body)
	}
	log := f.log.String()
	for _, want := range []string{`extension \"ctl@127.0.0.1\" left out`, `trunk \"ctl\" left out`, "control character"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "pass\\x01word") || strings.Contains(log, "[31m") {
		t.Errorf("a password reached the log:\n%s", log)
	}
}

// TestUndecryptablePasswords: with a key ring that cannot open a stored
// password, the trunk is left out and the user is not found; nothing is
// rendered with an empty password.
func TestUndecryptablePasswords(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		f := newFixture(t, backend, Options{})
		seed(t, f.s)
		other := modelstest.Reopen(t, f.s, modelstest.Options{Keys: modelstest.Keyring(t)})
		h := New(Options{Store: other, Logger: f.h.log, BasicUser: testBasicUser, BasicPassword: testBasicPass})
		g := &fixture{h: h, s: other, log: f.log}

		_, body := g.post(t, gatewaysReq("internal", "vm"))
		if strings.Contains(body, `name="1und1"`) {
			t.Fatalf("trunk with an undecryptable password rendered:\n%s", body)
		}
		_, body = g.post(t, gatewaysReq("external-ipv4", "vm"))
		if names := gatewayNames(t, body); len(names) != 1 || names[0] != "plusnet" {
			t.Fatalf("trunk without password should still render: %q", names)
		}
		if _, body := g.post(t, sipAuth("1000", "127.0.0.1")); !isNotFound(body) {
			t.Fatalf("user with an undecryptable password answered:\n%s", body)
		}
		log := f.log.String()
		if !strings.Contains(log, `cannot decrypt password of trunk \"1und1\"`) ||
			!strings.Contains(log, `cannot decrypt password of extension \"1000@127.0.0.1\"`) {
			t.Fatalf("undecryptable rows not named in the log:\n%s", log)
		}
		for _, secret := range []string{"1und1-Secret", "1234-secret"} {
			if strings.Contains(log, secret) {
				t.Fatalf("log holds a password:\n%s", log)
			}
		}
	})
}

func hasProblem(h *Handler, kind, name string) bool {
	for _, p := range h.Problems() {
		if p.Kind == kind && p.Name == name {
			return true
		}
	}
	return false
}
