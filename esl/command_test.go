package esl

import (
	"errors"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/names"
)

// Every builder refuses what could add an argument or a command.
func TestCommandBuildersRefuseInjection(t *testing.T) {
	bad := []string{"", "internal killgw _all_", "a\nb", "a\r\napi shutdown", "x\n\napi fsctl shutdown", "Upper", "_all_", "tab\tx"}
	for _, v := range bad {
		if _, err := profileCmd(opRescan, v); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("profile %q: %v", v, err)
		}
		if _, err := killCmd("internal", v); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("gateway %q: %v", v, err)
		}
		if _, err := killCmd(v, "plusnet"); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("kill via profile %q: %v", v, err)
		}
		if _, err := gatewayStatusCmd(v); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("status of %q: %v", v, err)
		}
		if _, err := flushCmd(v, "example.com"); v != "Upper" && !errors.Is(err, ErrInvalidValue) {
			t.Errorf("user %q: %v", v, err)
		}
		if _, err := flushCmd("1001", v+" x"); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("domain %q: %v", v, err)
		}
	}
	k, err := killCmd("external-ipv4", "plusnet")
	if err != nil || k.line() != "sofia profile external-ipv4 killgw plusnet" {
		t.Fatalf("%v %q", err, k.line())
	}
	f, err := flushCmd("1001", "pbx.example.com")
	if err != nil || f.line() != "xml_flush_cache id 1001 pbx.example.com" {
		t.Fatalf("%v %q", err, f.line())
	}
}

// What the API accepts as a directory user reaches FreeSWITCH's cache
// flush: the same rules (names.User, names.Domain) decide both. E.164 user
// ids used to pass the API and fail here, so FreeSWITCH kept the old user.
func TestFlushTakesWhatTheAPIAccepts(t *testing.T) {
	for _, c := range []struct{ user, domain, line string }{
		{"+493012345", "pbx.example.com", "xml_flush_cache id +493012345 pbx.example.com"},
		{"alice.smith", "192.0.2.7", "xml_flush_cache id alice.smith 192.0.2.7"},
		{"1001", "[2001:db8::1]", "xml_flush_cache id 1001 [2001:db8::1]"},
	} {
		if err := errors.Join(names.User(c.user), names.Domain(c.domain)); err != nil {
			t.Fatalf("%s@%s not valid: %v", c.user, c.domain, err)
		}
		f, err := flushCmd(c.user, c.domain)
		if err != nil || f.line() != c.line {
			t.Errorf("%s@%s: %v %q", c.user, c.domain, err, f.line())
		}
	}
	// A domain the API would have normalised is not what was stored.
	for _, d := range []string{"PBX.example.com", "2001:db8::1"} {
		if _, err := flushCmd("1001", d); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("domain %q accepted: %v", d, err)
		}
	}
}

// Replies as FreeSWITCH writes them (mod_sofia.c cmd_profile,
// mod_commands.c, mod_event_socket.c api_exec).
func TestReplyChecks(t *testing.T) {
	rescan, _ := profileCmd(opRescan, "internal")
	start, _ := profileCmd(opStart, "internal")
	restart, _ := profileCmd(opRestart, "internal")
	kill, _ := killCmd("internal", "einsundeins")
	flush, _ := flushCmd("1001", "example.com")
	cases := []struct {
		cmd   command
		reply string
		want  error // nil, or the sentinel
	}{
		{rescan, "Reload XML [Success]\n+OK scan complete\n", nil},
		{rescan, "+OK scan complete\n", nil},
		{rescan, "Reload XML [Cannot Open log directory or XML Root!]\n+OK scan complete\n", ErrCommandFailed},
		{rescan, "Reload XML [Success]\n-ERR cannot find config for profile internal\n", ErrCommandFailed},
		{rescan, "Invalid Profile [internal]", ErrProfileNotRunning},
		{rescan, "-ERR sofia Command not found!\n", ErrNoSofia},
		{rescan, "+OK", ErrCommandFailed}, // a bare +OK is not what rescan says
		{start, "Reload XML [Success]\ninternal started successfully\n", nil},
		{start, "Reload XML [Success]\nFailure starting internal\n", ErrCommandFailed},
		{restart, "Reload XML [Success]\nrestarting: internal", nil},
		{restart, "Profile internal must be up for at least 10 seconds to stop/restart.\nPlease wait 7 seconds\n", ErrTooEarly},
		{restart, "Invalid Profile [internal]", ErrProfileNotRunning},
		{kill, "+OK gateway marked for deletion.\n", nil},
		{kill, "-ERR no such gateway.\n", nil},
		{kill, "Invalid Profile [internal]", ErrProfileNotRunning},
		{kill, "-ERR missing gw name\n", ErrCommandFailed},
		{fixed(opReloadACL), "+OK acl reloaded\n", nil},
		{fixed(opReloadACL), "-Error [Cannot Open log directory or XML Root!]\n", ErrCommandFailed},
		{fixed(opLoadSofia), "+OK Reloading XML\n+OK\n", nil},
		{fixed(opLoadSofia), "+OK\n", nil},
		{fixed(opLoadSofia), "+OK Reloading XML\n-ERR [Module already loaded]\n", nil},
		{fixed(opLoadSofia), "+OK Reloading XML\n-ERR [Cannot load module]\n", ErrCommandFailed},
		{fixed(opModuleExists), "false", nil},
		{fixed(opModuleExists), "-ERR module_exists Command not found!\n", ErrCommandFailed},
		{fixed(opStatus), "UP 0 years, 0 days, 0 hours, 0 minutes, 5 seconds\n", nil},
		{fixed(opSwitchname), "fs1", nil},
		{fixed(opSwitchname), "-ERR switchname Command not found!\n", ErrCommandFailed},
		{flush, "+OK cleared 1 entry\n", nil},
		{fixed(opXMLStatus), "-ERR sofia Command not found!\n", ErrNoSofia},
	}
	for _, c := range cases {
		err := c.cmd.check(c.reply)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s ← %q: %v", c.cmd, c.reply, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s ← %q: %v, want %v", c.cmd, c.reply, err, c.want)
		case c.want != nil && !strings.Contains(err.Error(), c.cmd.line()):
			t.Errorf("error %q does not name the command", err)
		}
	}
	if n := waitSeconds("Profile internal must be up for at least 10 seconds to stop/restart.\nPlease wait 1 second\n"); n != 1 {
		t.Fatalf("wait %d", n)
	}
	if n := waitSeconds("garbage"); n != 10 {
		t.Fatalf("wait %d", n)
	}
}
