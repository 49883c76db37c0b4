package console_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/fsplane/fsplane/esl/esltest"
)

// chromiumPath finds Debian's chromium; without it the test skips, or
// under CI=true fails (`make test` installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FSPLANE_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; under CI=true the browser test is required (run `make test` as root, or apt-get install chromium)")
	}
	t.Skip("chromium not installed (apt-get install chromium); skipping the browser test")
	return ""
}

// ui drives one headless Chromium tab through the console. Each step
// keeps a screenshot of the page it ended on; a failure writes them all,
// with one of the page it failed on, and names the directory.
type ui struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots []shot
}

type shot struct {
	name string
	jpeg []byte
}

func (u *ui) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.fail(name, err)
	}
	if b, err := chromedp.Run(ctx, chromedp.FullScreenshot(70)); err == nil {
		u.shots = append(u.shots, shot{name: name, jpeg: b})
	}
}

// eval runs a JavaScript expression and returns its value.
func eval[T any](u *ui, name, js string) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		u.fail(name, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it holds.
func (u *ui) waitFor(name, js string, within time.Duration) {
	u.t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := time.Until(deadline)
		ctx, cancel := context.WithTimeout(u.ctx, left+time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(left), chromedp.WithPollingInterval(50*time.Millisecond)))
		cancel()
		if err == nil {
			return
		}
		// A form's submission navigates: the page the poll ran in is gone
		// (its execution context destroyed); poll the new one.
		msg := err.Error()
		navigated := strings.Contains(msg, "Cannot find context") || strings.Contains(msg, "context was destroyed")
		if !navigated || time.Until(deadline) <= 0 {
			u.fail(name, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (u *ui) fail(name string, err error) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if b, serr := chromedp.Run(ctx, chromedp.FullScreenshot(70)); serr == nil {
		u.shots = append(u.shots, shot{name: "FAILED " + name, jpeg: b})
	}
	// Outside t.TempDir: the screenshots must outlive the failed test.
	dir, derr := os.MkdirTemp("", "fsplane-console-screenshots-")
	if derr != nil {
		u.t.Fatalf("%s: %v (page %s; no screenshots: %v)", name, err, loc, derr)
	}
	for i, s := range u.shots {
		file := fmt.Sprintf("%02d-%s.jpg", i+1, strings.NewReplacer(" ", "-", "/", "-").Replace(s.name))
		_ = os.WriteFile(filepath.Join(dir, file), s.jpeg, 0o644)
	}
	u.t.Fatalf("%s: %v (page %s; screenshots of each step in %s)", name, err, loc, dir)
}

func (u *ui) go_(path string) chromedp.Action[chromedp.Void] { return chromedp.Navigate(u.base + path) }

// TestBrowser walks the runbook in a real headless Chromium: log in, create
// the two trunks from their presets, meet a validation error beside its
// field, watch a gateway state change, its REGISTER reason and its calls
// arrive without a reload, read the firewall preview, unregister one of
// FreeSWITCH's registrations, log out; then a read-only token sees no
// write control.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not with -short")
	}
	exe := chromiumPath(t)
	fs := esltest.Start(t, esltest.Options{Profiles: []string{"external-ipv4", "internal"}})
	// What xml-curl would serve FreeSWITCH once the trunks exist: a rescan
	// loads them (1&1 registers: REGED; Plusnet is IP-authenticated: NOREG).
	fs.DefineGateway(esltest.Gateway{Name: "plusnet", Profile: "external-ipv4"})
	fs.DefineGateway(esltest.Gateway{Name: "1und1", Profile: "internal", Register: true, Realm: "sip.1und1.de"})
	fs.SetRegistrations("internal", []esltest.Registration{{CallID: "c1@192.0.2.10", SIPUser: "1001", SIPHost: "pbx.example.com",
		Contact: "<sip:1001@192.0.2.10:5062>", Agent: "Yealink SIP-T46U", Expires: time.Now().Add(time.Hour),
		NetworkIP: "198.51.100.7", NetworkPort: "41234"}})
	ev := newEnv(t, envOptions{eslNode: fs.Addr(), gatewayPoll: 100 * time.Millisecond})

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	// Before the server closes (cleanups run last-in first-out): the
	// browser's live-update stream ends with it.
	t.Cleanup(func() { within(t, "Chromium to close", func() { cancel(); cancelAlloc() }) })
	// The first Run starts the browser and must not carry a timeout (it
	// would end the browser with it); a browser that never comes up is
	// bounded here instead, and cancel kills it.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", exe, err)
		}
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("%s did not start within a minute", exe)
	}
	u := &ui{t: t, ctx: ctx, base: ev.srv.URL}

	u.step("log in",
		u.go_("/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), ev.tokens["admin"]),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("table#trunks")),
	)

	u.step("create plusnet from its preset",
		chromedp.Click(chromedp.CSS("#new-plusnet")),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "plusnet"),
		chromedp.SendKeys(chromedp.CSS("#numbers"), "+493455667290"),
		chromedp.Click(chromedp.CSS("#create")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-trunk="plusnet"]`)),
	)

	u.step("1und1 without its password",
		chromedp.Click(chromedp.CSS("#new-1und1")),
		chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#name"), "1und1"),
		chromedp.SendKeys(chromedp.CSS("#numbers"), "+4934556643378\n+493455630488"),
		chromedp.SendKeys(chromedp.CSS("#username"), "4934556643378"),
		chromedp.Click(chromedp.CSS("#create")),
		chromedp.WaitVisible(chromedp.CSS("#err-password")),
	)
	// The error sits beside its field: the password input's own
	// description, right after it.
	if got := eval[string](u, "error beside password", `(function () {
		var i = document.getElementById("password");
		var e = i.nextElementSibling;
		return i.getAttribute("aria-describedby") + "|" + (e && e.id) + "|" + (e && e.textContent);
	})()`); !strings.HasPrefix(got, "err-password|err-password|") || len(got) < len("err-password|err-password|")+5 {
		u.fail("error beside password", errors.New("got "+got))
	}
	if v := eval[string](u, "values kept", `document.getElementById("username").value + "|" + document.getElementById("password").value`); v != "4934556643378|" {
		u.fail("values kept", errors.New("username|password = "+v))
	}

	u.step("create 1und1 with its password",
		chromedp.SendKeys(chromedp.CSS("#password"), "your-sip-password"),
		chromedp.Click(chromedp.CSS("#create")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-trunk="1und1"]`)),
	)

	// Both gateways come up on the node (the manager's rescan), live.
	gwState := func(trunk string) string {
		return `(function () { var s = document.querySelector('[data-gw-trunk="` + trunk + `"] .state'); return s ? s.textContent : ""; })()`
	}
	u.waitFor("1und1 REGED", gwState("1und1")+` === "REGED"`, 5*time.Second)
	u.waitFor("plusnet NOREG healthy", gwState("plusnet")+` === "NOREG (IP auth)"`, 5*time.Second)

	// A FreeSWITCH event changes the gateway's state; the page shows it
	// without reloading (the marker would not survive a reload).
	eval[bool](u, "mark the page", `window.__notReloaded = true`)
	// Calls counted and a REGISTER refused: FreeSWITCH's FAILED event
	// carries the reply (403 Forbidden), its FAIL_WAIT after it none; the
	// row shows both, live.
	fs.SetGatewayCalls("1und1", 2, 5, 0, 1)
	fs.SetGatewayStateReply("1und1", "FAILED", "DOWN", 403, "Forbidden")
	fs.SetGatewayState("1und1", "FAIL_WAIT", "DOWN")
	u.waitFor("FAIL_WAIT arrives live", gwState("1und1")+` === "FAIL_WAIT" && window.__notReloaded === true`, 5*time.Second)
	gwPart := func(trunk, part string) string {
		return `(function () { var s = document.querySelector('[data-gw-trunk="` + trunk + `"] .` + part + `'); return s ? s.textContent : ""; })()`
	}
	u.waitFor("reason and calls arrive live", gwPart("1und1", "register")+` === "last REGISTER: 403 Forbidden" && `+
		gwPart("1und1", "calls")+` === "2 inbound / 5 outbound (failed: 0 / 1)" && window.__notReloaded === true`, 5*time.Second)
	if cls := eval[string](u, "FAIL_WAIT is bad", `document.querySelector('[data-gw-trunk="1und1"]').className`); !strings.Contains(cls, "bad") {
		u.fail("FAIL_WAIT is bad", errors.New("class "+cls))
	}

	u.step("firewall preview",
		chromedp.Click(chromedp.CSS(`a[href="/ui/firewall"]`)),
		chromedp.WaitVisible(chromedp.CSS("#ufw-rules")),
		chromedp.WaitVisible(chromedp.CSS(`button[data-copy="ufw-rules"]`)),
	)
	if rules := eval[string](u, "ufw rules", `document.getElementById("ufw-rules").textContent`); !strings.Contains(rules, "ufw allow") || !strings.Contains(rules, "92.197.176.0/24") {
		u.fail("ufw rules", errors.New("no Plusnet rule in:\n"+rules))
	}
	if nft := eval[string](u, "nft rules", `document.getElementById("nft-rules").textContent`); !strings.Contains(nft, "table") {
		u.fail("nft rules", errors.New("no ruleset:\n"+nft))
	}

	// FreeSWITCH's own registrations: listed, and one unregistered.
	u.step("FreeSWITCH registrations",
		chromedp.Click(chromedp.CSS(`a[href="/ui/registrations"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-fs-user="1001@pbx.example.com"]`)),
	)
	if row := eval[string](u, "registration row", `document.querySelector('tr[data-fs-user="1001@pbx.example.com"]').textContent`); !strings.Contains(row, "Yealink SIP-T46U") ||
		!strings.Contains(row, "198.51.100.7") || !strings.Contains(row, "41234") {
		u.fail("registration row", errors.New("row: "+row))
	}
	u.step("unregister at FreeSWITCH",
		chromedp.Click(chromedp.CSS(`tr[data-fs-user="1001@pbx.example.com"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#fs-registrations")),
	)
	u.waitFor("registration gone", `document.querySelector('tr[data-fs-user="1001@pbx.example.com"]') === null && document.body.textContent.indexOf("Unregistered 1001@pbx.example.com") >= 0`, 5*time.Second)
	if f := fs.Flushes(); len(f) != 1 || f[0].Arg != "c1@192.0.2.10" || f[0].Profile != "internal" {
		u.fail("flush", fmt.Errorf("flushes %+v", f))
	}

	u.step("log out",
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		u.go_("/ui/trunks"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
	)

	u.step("read-only login",
		chromedp.SendKeys(chromedp.CSS("#token"), ev.tokens["sip:read"]),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-trunk="1und1"]`)),
	)
	if n := eval[int](u, "no write controls", `document.querySelectorAll('a[id^="new-"], a[href$="/edit"], a[href$="/delete"], form[action$="/enabled"], form[action="/ui/trunks"]').length`); n != 0 {
		u.fail("no write controls", errors.New("the read-only page has write controls"))
	}
	if n := eval[int](u, "rows", `document.querySelectorAll("tr[data-trunk]").length`); n != 2 {
		u.fail("rows", errors.New("want 2 trunk rows"))
	}

	// With JavaScript off the pages still read right: the rows and the
	// gateway states are in the HTML; logging out is a plain form.
	u.step("JavaScript off",
		scriptsOff(true),
		u.go_("/ui/trunks"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-trunk="plusnet"]`)),
	)
	noJS := eval[string](u, "JavaScript off: states", `document.querySelector('[data-gw-trunk="1und1"] .state').textContent + "|" +
		document.querySelector('[data-gw-trunk="plusnet"] .state').textContent + "|" + document.getElementById("live").hidden`)
	if noJS != "FAIL_WAIT|NOREG (IP auth)|true" {
		u.fail("JavaScript off: states", errors.New("states|badge hidden = "+noJS))
	}
	u.step("read-only log out, JavaScript off", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")))
}

// scriptsOff switches the page's own JavaScript off (or on again).
func scriptsOff(off bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: off})
		return chromedp.Void{}, err
	}
}
