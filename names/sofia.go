package names

import "unicode/utf8"

// ProfileSettings are the sofia settings (and the global RTP port range)
// that a profile sets through its own fields, each with the JSON field
// that sets it. A free setting of the same name is refused: it would
// bypass that field's validation, and only one of the two could render.
var ProfileSettings = map[string]string{
	"sip-ip": "sip_ip", "sip-port": "sip_port", "rtp-ip": "rtp_ip", "ext-sip-ip": "ext_sip_ip",
	"ext-rtp-ip": "ext_rtp_ip", "rtp-start-port": "rtp_port_min", "rtp-end-port": "rtp_port_max",
	"tls": "tls", "tls-sip-port": "tls_port", "tls-cert-dir": "tls_cert_dir", "wss-binding": "wss_binding",
	"apply-inbound-acl": "inbound_acl", "auth-calls": "auth_calls", "context": "context",
}

// deniedSettings would switch authentication off for the whole profile
// (sofia then accepts any REGISTER, or any credentials): never rendered,
// so never stored.
var deniedSettings = map[string]string{
	"accept-blind-reg":  "would accept every REGISTER without authentication",
	"accept-blind-auth": "would accept any credentials",
}

// MaxSettingValue is the longest value of a free sofia setting.
const MaxSettingValue = 255

// Setting checks a free sofia setting (a profile's params entry): a
// setting name (lower-case letters, digits and '-', starting with a
// letter), none of ProfileSettings, not one that disables authentication,
// and a value that is one Token of at most MaxSettingValue characters.
// What passes is rendered into sofia.conf exactly; nothing else is.
func Setting(name, value string) error {
	if err := match(settingRe, "sofia param name", name); err != nil {
		return err
	}
	if field, ok := ProfileSettings[name]; ok {
		return invalidf("%q has its own field: set %s", name, field)
	}
	if why, ok := deniedSettings[name]; ok {
		return invalidf("%q is refused: it %s", name, why)
	}
	if value == "" {
		return invalidf("%s: must not be empty (leave the setting out for sofia's default)", name)
	}
	if err := Token(value); err != nil {
		return invalidf("%s: %s", name, err)
	}
	if n := utf8.RuneCountInString(value); n > MaxSettingValue {
		return invalidf("%s: must be at most %d characters", name, MaxSettingValue)
	}
	return nil
}
