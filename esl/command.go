package esl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fsplane/fsplane/names"
)

// op is what a command does; it is also the metric label.
type op string

const (
	opStatus        op = "status"
	opSwitchname    op = "switchname"
	opModuleExists  op = "module_exists"
	opLoadSofia     op = "load_sofia"
	opXMLStatus     op = "xmlstatus"
	opGatewayStatus op = "gateway_status"
	opStart         op = "profile_start"
	opRescan        op = "profile_rescan"
	opRestart       op = "profile_restart"
	opKillGW        op = "killgw"
	opReloadACL     op = "reloadacl"
	opReloadCert    op = "reloadcert"
	opFlushUser     op = "xml_flush_cache"
	opRegStatus     op = "reg_status"
	opFlushReg      op = "flush_inbound_reg"
	opEvents        op = "events"
)

// command is one ESL command built from typed, validated values. Every
// field that reaches the wire passed names.Profile, names.Gateway,
// names.User or names.Domain, none of which admits a space, CR or LF: no
// value can add an argument or a second command.
type command struct {
	op      op
	profile string
	gateway string
	user    string
	domain  string
	callID  string // passed names.SofiaArg
	reboot  bool
}

func invalid(err error) error { return fmt.Errorf("esl: %w: %w", ErrInvalidValue, err) }

func profileCmd(o op, profile string) (command, error) {
	if err := names.Profile(profile); err != nil {
		return command{}, invalid(err)
	}
	return command{op: o, profile: profile}, nil
}

func killCmd(profile, gateway string) (command, error) {
	if err := names.Profile(profile); err != nil {
		return command{}, invalid(err)
	}
	if err := names.Gateway(gateway); err != nil {
		return command{}, invalid(err)
	}
	return command{op: opKillGW, profile: profile, gateway: gateway}, nil
}

func gatewayStatusCmd(gateway string) (command, error) {
	if err := names.Gateway(gateway); err != nil {
		return command{}, invalid(err)
	}
	return command{op: opGatewayStatus, gateway: gateway}, nil
}

// flushCmd drops a directory user from FreeSWITCH's XML cache
// (xml_flush_cache <key> <user> <domain>; the cache key is "id" + user +
// domain, switch_xml.c).
func flushCmd(user, domain string) (command, error) {
	if err := names.User(user); err != nil {
		return command{}, invalid(fmt.Errorf("user: %w", err))
	}
	if err := names.Domain(domain); err != nil {
		return command{}, invalid(fmt.Errorf("domain: %w", err))
	}
	return command{op: opFlushUser, user: user, domain: domain}, nil
}

// regStatusCmd lists a profile's registrations (mod_sofia.c
// cmd_xml_status: `sofia xmlstatus profile P reg`).
func regStatusCmd(profile string) (command, error) {
	return profileCmd(opRegStatus, profile)
}

// flushRegCmd flushes the registrations matching callID (mod_sofia.c
// cmd_profile, "flush_inbound_reg": `sofia profile P flush_inbound_reg
// <call-id> [reboot]`).
func flushRegCmd(profile, callID string, reboot bool) (command, error) {
	if err := names.Profile(profile); err != nil {
		return command{}, invalid(err)
	}
	if err := names.SofiaArg(callID); err != nil {
		return command{}, invalid(fmt.Errorf("call-id: %w", err))
	}
	return command{op: opFlushReg, profile: profile, callID: callID, reboot: reboot}, nil
}

func fixed(o op) command { return command{op: o} }

// line is the api command line (without "api ").
func (c command) line() string {
	switch c.op {
	case opStatus:
		return "status"
	case opSwitchname:
		return "switchname"
	case opModuleExists:
		return "module_exists mod_sofia"
	case opLoadSofia:
		return "load mod_sofia"
	case opXMLStatus:
		return "sofia xmlstatus"
	case opGatewayStatus:
		return "sofia xmlstatus gateway " + c.gateway
	case opStart:
		return "sofia profile " + c.profile + " start"
	case opRescan:
		return "sofia profile " + c.profile + " rescan"
	case opRestart:
		return "sofia profile " + c.profile + " restart"
	case opKillGW:
		return "sofia profile " + c.profile + " killgw " + c.gateway
	case opReloadACL:
		return "reloadacl"
	case opReloadCert:
		// FreeSWITCH 1.11.1+ (mod_commands): sofia reloads its TLS
		// certificates without dropping calls.
		return "reloadcert"
	case opFlushUser:
		return "xml_flush_cache id " + c.user + " " + c.domain
	case opRegStatus:
		return "sofia xmlstatus profile " + c.profile + " reg"
	case opFlushReg:
		l := "sofia profile " + c.profile + " flush_inbound_reg " + c.callID
		if c.reboot {
			l += " reboot"
		}
		return l
	}
	panic("esl: unknown op " + string(c.op))
}

func (c command) String() string { return c.line() }

// check reads FreeSWITCH's answer to c (mod_sofia.c cmd_profile,
// mod_commands.c): nil for success, a *ReplyError otherwise.
func (c command) check(reply string) error {
	fail := func(kind error) error {
		return &ReplyError{Command: c.line(), Reply: strings.TrimSpace(reply), Kind: kind}
	}
	trimmed := strings.TrimSpace(reply)
	if strings.HasPrefix(trimmed, "-ERR") && strings.Contains(trimmed, "Command not found") {
		if strings.HasPrefix(c.line(), "sofia ") {
			return fail(ErrNoSofia)
		}
		return fail(ErrCommandFailed)
	}
	if strings.HasPrefix(trimmed, "Invalid Profile") {
		return fail(ErrProfileNotRunning)
	}
	switch c.op {
	case opReloadCert:
		if strings.HasPrefix(trimmed, "+OK") {
			return nil
		}
	case opStatus:
		if strings.HasPrefix(trimmed, "UP") {
			return nil
		}
	case opSwitchname:
		if trimmed != "" && !strings.HasPrefix(trimmed, "-") && !strings.ContainsAny(trimmed, " \n") {
			return nil
		}
	case opModuleExists:
		if trimmed == "true" || trimmed == "false" {
			return nil
		}
	case opLoadSofia:
		last := lastLine(trimmed)
		if last == "+OK" || strings.Contains(trimmed, "already loaded") {
			return nil
		}
	case opXMLStatus, opGatewayStatus, opRegStatus:
		if strings.HasPrefix(trimmed, "<?xml") || (c.op == opGatewayStatus && strings.HasPrefix(trimmed, "Invalid Gateway")) {
			return nil
		}
	case opStart:
		if strings.Contains(trimmed, c.profile+" started successfully") {
			return nil
		}
	case opRescan:
		// "Reload XML [Success]\n+OK scan complete"; a failed XML reload
		// reads "Reload XML [<error>]".
		ok := false
		for _, l := range strings.Split(trimmed, "\n") {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "Reload XML [") && l != "Reload XML [Success]" {
				return fail(ErrCommandFailed)
			}
			if l == "+OK scan complete" {
				ok = true
			}
		}
		if ok {
			return nil
		}
	case opRestart:
		if strings.Contains(trimmed, "must be up for at least") {
			return fail(ErrTooEarly)
		}
		if strings.Contains(trimmed, "restarting: "+c.profile) {
			return nil
		}
	case opKillGW:
		// "-ERR no such gateway." means there is nothing to kill: done.
		if strings.HasPrefix(trimmed, "+OK") || strings.HasPrefix(trimmed, "-ERR no such gateway") {
			return nil
		}
	case opReloadACL:
		if strings.HasPrefix(lastLine(trimmed), "+OK") {
			return nil
		}
	case opFlushUser:
		if strings.HasPrefix(trimmed, "+OK") {
			return nil
		}
	case opFlushReg:
		// "+OK flushing all registrations matching specified call_id"
		// ("rebooting" with the flag).
		if strings.HasPrefix(trimmed, "+OK ") && strings.Contains(trimmed, "matching specified call_id") {
			return nil
		}
	}
	return fail(ErrCommandFailed)
}

// waitSeconds reads "Please wait N seconds" from a restart refusal; 10
// when it cannot.
func waitSeconds(reply string) int {
	_, after, ok := strings.Cut(reply, "Please wait ")
	if !ok {
		return 10
	}
	f := strings.Fields(after)
	if len(f) == 0 {
		return 10
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 || n > 10 {
		return 10
	}
	return n
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return strings.TrimSpace(s)
}
