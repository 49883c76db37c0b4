// Package config loads fsplane's settings once at start: defaults, then an
// optional YAML-free key=value file, then environment variables, then flags;
// then Validate. Nothing downstream re-validates or reads the environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsplane/fsplane/stun"
)

// Config is every setting fsplane reads.
type Config struct {
	// Listen is the platform API's address (FSPLANE_LISTEN, --listen).
	Listen string
	// DataDir holds the SQLite file and the key file (FSPLANE_DATA_DIR).
	DataDir string
	// DatabaseURL selects PostgreSQL (DATABASE_URL).
	DatabaseURL string
	// FernetKeys are keys given inline, newest first (FSPLANE_FERNET_KEYS).
	FernetKeys []string
	// FernetKeyFile is the key file (FSPLANE_FERNET_KEY_FILE); default
	// DataDir/fernet.keys.
	FernetKeyFile string

	// ESLNodes are FreeSWITCH event sockets, host:port (FSPLANE_ESL_NODES,
	// --esl, repeatable).
	ESLNodes []string
	// ESLPassword is the event socket password (FSPLANE_ESL_PASSWORD).
	ESLPassword string
	// ESLAllowRestart lets the planner restart a profile whose bindings
	// changed (FSPLANE_ESL_ALLOW_RESTART).
	ESLAllowRestart bool
	// ESLReconnectMin and ESLReconnectMax bound the jittered exponential
	// backoff between connection attempts to a node
	// (FSPLANE_ESL_RECONNECT_MIN, FSPLANE_ESL_RECONNECT_MAX).
	ESLReconnectMin time.Duration
	ESLReconnectMax time.Duration
	// ESLProbeInterval is how often a node that does not accept
	// connections is probed with a bare TCP connect, so fsplane connects
	// within about this long of it coming back (FSPLANE_ESL_PROBE_INTERVAL).
	ESLProbeInterval time.Duration

	// XMLCurlUser and XMLCurlPassword are the HTTP Basic credentials
	// FreeSWITCH sends (gateway-credentials) (FSPLANE_XMLCURL_USER,
	// FSPLANE_XMLCURL_PASSWORD). Empty: only bearer tokens with the xmlcurl
	// scope are accepted.
	XMLCurlUser     string
	XMLCurlPassword string
	// XMLCurlNetworks limits xml-curl requests to these source networks
	// (FSPLANE_XMLCURL_NETWORKS, comma-separated CIDRs); empty allows all.
	XMLCurlNetworks []netip.Prefix
	// XMLCurlCacheable is the cacheable TTL FreeSWITCH may keep a directory
	// user (FSPLANE_XMLCURL_CACHEABLE, e.g. 60s; 0 disables).
	XMLCurlCacheable time.Duration
	// XMLCurlPlaintextPasswords renders directory users with their
	// password instead of its a1-hash (FSPLANE_XMLCURL_PLAINTEXT_PASSWORDS).
	XMLCurlPlaintextPasswords bool
	// XMLCurlCacheMaxAge bounds how long xml-curl serves a cached answer
	// before rendering it again (FSPLANE_XMLCURL_CACHE_MAX_AGE).
	XMLCurlCacheMaxAge time.Duration
	// PublicURL is how FreeSWITCH reaches fsplane, for freeswitch-config
	// (FSPLANE_PUBLIC_URL); default http://127.0.0.1:<listen port>.
	PublicURL string
	// TokenCacheTTL is how long a verified API token is trusted without
	// asking the database (FSPLANE_TOKEN_CACHE_TTL; 0 asks every time): a
	// revoked token keeps working for at most this long, and a token
	// keeps working this long into a database outage.
	TokenCacheTTL time.Duration

	// ExternalIPv4 and ExternalIPv6 are this host's public addresses, used
	// for the default profiles at first start (FSPLANE_EXTERNAL_IPV4,
	// FSPLANE_EXTERNAL_IPV6); detected when empty.
	ExternalIPv4 string
	ExternalIPv6 string

	// FederationResolver is the DNS server HOST:PORT the federation check
	// asks (FSPLANE_FEDERATION_RESOLVER); empty: the system's.
	FederationResolver string
	// FederationTLSDir is the tls-cert-dir fsplane fills with agent.pem and
	// cafile.pem for the federation profile (FSPLANE_FEDERATION_TLS_DIR);
	// default DataDir/federation-tls. FreeSWITCH must be able to read it.
	FederationTLSDir string
	// FederationExpiryWarnDays: a federation certificate expiring sooner
	// is a warning (FSPLANE_FEDERATION_EXPIRY_WARN_DAYS, default 14).
	FederationExpiryWarnDays int

	// LogLevel is debug, info, warn or error (FSPLANE_LOG_LEVEL).
	LogLevel string
	// LogFormat is text or json (FSPLANE_LOG_FORMAT), json for log shippers.
	LogFormat string

	// STUN is the STUN responder's addresses (FSPLANE_STUN_*, stun.go);
	// off while STUN.Primary is zero.
	STUN stun.Config
	// STUNProbeServer is the STUN server (host:port) whose answers set the
	// ext IPs of profiles with use_public_address, every
	// STUNProbeInterval (FSPLANE_STUN_PROBE_SERVER, _INTERVAL).
	STUNProbeServer   string
	STUNProbeInterval time.Duration

	// Registrar is fsplane's own SIP registrar (registrar.go).
	Registrar Registrar
}

// Default returns the settings with nothing configured.
func Default() Config {
	return Config{
		Listen:             ":8001",
		DataDir:            "./data",
		ESLPassword:        "ClueCon",
		ESLReconnectMin:    500 * time.Millisecond,
		ESLReconnectMax:    30 * time.Second,
		ESLProbeInterval:   time.Second,
		XMLCurlCacheable:   60 * time.Second,
		XMLCurlCacheMaxAge: 5 * time.Minute,
		TokenCacheTTL:      60 * time.Second,
		LogLevel:           "info",
		LogFormat:          "text",
		STUN:               stun.Config{RateLimit: DefaultSTUNRateLimit},
		Registrar:          defaultRegistrar(),
	}
}

// Env names, one per setting.
const (
	EnvListen           = "FSPLANE_LISTEN"
	EnvDataDir          = "FSPLANE_DATA_DIR"
	EnvDatabaseURL      = "DATABASE_URL"
	EnvFernetKeys       = "FSPLANE_FERNET_KEYS"
	EnvFernetKeyFile    = "FSPLANE_FERNET_KEY_FILE"
	EnvESLNodes         = "FSPLANE_ESL_NODES"
	EnvESLPassword      = "FSPLANE_ESL_PASSWORD"
	EnvESLAllowRestart  = "FSPLANE_ESL_ALLOW_RESTART"
	EnvESLReconnectMin  = "FSPLANE_ESL_RECONNECT_MIN"
	EnvESLReconnectMax  = "FSPLANE_ESL_RECONNECT_MAX"
	EnvESLProbeInterval = "FSPLANE_ESL_PROBE_INTERVAL"
	EnvXMLCurlUser      = "FSPLANE_XMLCURL_USER"
	EnvXMLCurlPassword  = "FSPLANE_XMLCURL_PASSWORD"
	EnvXMLCurlNetworks  = "FSPLANE_XMLCURL_NETWORKS"
	EnvXMLCurlCacheable = "FSPLANE_XMLCURL_CACHEABLE"
	EnvXMLCurlPlaintext = "FSPLANE_XMLCURL_PLAINTEXT_PASSWORDS"
	EnvXMLCurlMaxAge    = "FSPLANE_XMLCURL_CACHE_MAX_AGE"
	EnvPublicURL        = "FSPLANE_PUBLIC_URL"
	EnvTokenCacheTTL    = "FSPLANE_TOKEN_CACHE_TTL"
	EnvExternalIPv4     = "FSPLANE_EXTERNAL_IPV4"
	EnvExternalIPv6     = "FSPLANE_EXTERNAL_IPV6"
	EnvLogLevel         = "FSPLANE_LOG_LEVEL"
	EnvLogFormat        = "FSPLANE_LOG_FORMAT"
	EnvConfigFile       = "FSPLANE_CONFIG"

	EnvFederationResolver   = "FSPLANE_FEDERATION_RESOLVER"
	EnvFederationTLSDir     = "FSPLANE_FEDERATION_TLS_DIR"
	EnvFederationExpiryWarn = "FSPLANE_FEDERATION_EXPIRY_WARN_DAYS"
)

// Apply sets one setting by its environment name from a string value; the
// config file, the environment and the flags all go through it, so the three
// share one parser and one set of error messages.
func (c *Config) Apply(name, value string) error {
	value = strings.TrimSpace(value)
	bad := func(err error) error { return fmt.Errorf("%s: %w", name, err) }
	switch name {
	case EnvListen:
		c.Listen = value
	case EnvDataDir:
		c.DataDir = value
	case EnvDatabaseURL:
		c.DatabaseURL = value
	case EnvFernetKeys:
		c.FernetKeys = splitList(value)
	case EnvFernetKeyFile:
		c.FernetKeyFile = value
	case EnvESLNodes:
		c.ESLNodes = splitList(value)
	case EnvESLPassword:
		c.ESLPassword = value
	case EnvESLAllowRestart:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad(errors.New("want true or false"))
		}
		c.ESLAllowRestart = b
	case EnvESLReconnectMin, EnvESLReconnectMax, EnvESLProbeInterval:
		d, err := time.ParseDuration(value)
		if err != nil {
			return bad(fmt.Errorf("%q is not a duration like 500ms or 30s", value))
		}
		switch name {
		case EnvESLReconnectMin:
			c.ESLReconnectMin = d
		case EnvESLReconnectMax:
			c.ESLReconnectMax = d
		default:
			c.ESLProbeInterval = d
		}
	case EnvXMLCurlUser:
		c.XMLCurlUser = value
	case EnvXMLCurlPassword:
		c.XMLCurlPassword = value
	case EnvXMLCurlNetworks:
		c.XMLCurlNetworks = nil
		for _, s := range splitList(value) {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return bad(fmt.Errorf("%q is not a CIDR", s))
			}
			c.XMLCurlNetworks = append(c.XMLCurlNetworks, p.Masked())
		}
	case EnvXMLCurlCacheable:
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return bad(fmt.Errorf("%q is not a duration like 60s", value))
		}
		c.XMLCurlCacheable = d
	case EnvXMLCurlMaxAge:
		d, err := time.ParseDuration(value)
		if err != nil || d < time.Second || d > 24*time.Hour {
			return bad(fmt.Errorf("%q is not a duration from 1s to 24h, like 5m", value))
		}
		c.XMLCurlCacheMaxAge = d
	case EnvXMLCurlPlaintext:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad(errors.New("want true or false"))
		}
		c.XMLCurlPlaintextPasswords = b
	case EnvPublicURL:
		c.PublicURL = value
	case EnvTokenCacheTTL:
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return bad(fmt.Errorf("%q is not a duration like 60s", value))
		}
		if d > MaxTokenCacheTTL {
			return bad(fmt.Errorf("%s is longer than %s: a revoked token would keep working that long", d, MaxTokenCacheTTL))
		}
		c.TokenCacheTTL = d
	case EnvExternalIPv4:
		c.ExternalIPv4 = value
	case EnvExternalIPv6:
		c.ExternalIPv6 = value
	case EnvFederationResolver:
		if _, _, err := net.SplitHostPort(value); err != nil && value != "" {
			return bad(fmt.Errorf("%q is not HOST:PORT (e.g. 127.0.0.53:53)", value))
		}
		c.FederationResolver = value
	case EnvFederationTLSDir:
		if value != "" && !filepath.IsAbs(value) {
			return bad(fmt.Errorf("%q is not an absolute path", value))
		}
		c.FederationTLSDir = value
	case EnvFederationExpiryWarn:
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > 365 {
			return bad(fmt.Errorf("%q is not a number of days from 1 to 365", value))
		}
		c.FederationExpiryWarnDays = n
	case EnvLogLevel:
		c.LogLevel = strings.ToLower(value)
	case EnvLogFormat:
		c.LogFormat = strings.ToLower(value)
	default:
		if ok, err := c.applySTUN(name, value); ok {
			return err
		}
		if ok, err := c.applyRegistrar(name, value); ok {
			return err
		}
		return fmt.Errorf("unknown setting %s", name)
	}
	return nil
}

// Settings lists every setting name Apply knows.
var Settings = []string{
	EnvListen, EnvDataDir, EnvDatabaseURL, EnvFernetKeys, EnvFernetKeyFile,
	EnvESLNodes, EnvESLPassword, EnvESLAllowRestart, EnvESLReconnectMin, EnvESLReconnectMax, EnvESLProbeInterval,
	EnvXMLCurlUser, EnvXMLCurlPassword, EnvXMLCurlNetworks, EnvXMLCurlCacheable, EnvXMLCurlPlaintext, EnvXMLCurlMaxAge,
	EnvPublicURL, EnvExternalIPv4, EnvExternalIPv6, EnvLogLevel, EnvLogFormat, EnvTokenCacheTTL,
	EnvFederationResolver, EnvFederationTLSDir, EnvFederationExpiryWarn,
}

// MaxTokenCacheTTL bounds FSPLANE_TOKEN_CACHE_TTL, and with it how long a
// revoked token may keep working.
const MaxTokenCacheTTL = time.Hour

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// LoadFile applies a config file of NAME=value lines (the same names as the
// environment; '#' starts a comment).
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("config file %s line %d: want NAME=value", path, i+1)
		}
		if err := c.Apply(strings.TrimSpace(name), strings.Trim(strings.TrimSpace(value), `"`)); err != nil {
			return fmt.Errorf("config file %s line %d: %w", path, i+1, err)
		}
	}
	return nil
}

// LoadEnv applies every set environment variable of Settings.
func (c *Config) LoadEnv(getenv func(string) string) error {
	for _, name := range Settings {
		if v := getenv(name); v != "" {
			if err := c.Apply(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks the whole configuration once and fills derived defaults.
func (c *Config) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %q is not host:port (e.g. :8001)", EnvListen, c.Listen))
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		errs = append(errs, fmt.Errorf("%s: port %q out of range", EnvListen, port))
	}
	if c.DataDir == "" {
		errs = append(errs, fmt.Errorf("%s: must not be empty", EnvDataDir))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.Contains(c.DatabaseURL, "=") {
		errs = append(errs, fmt.Errorf("%s: want a postgres:// URL or a key=value DSN", EnvDatabaseURL))
	}
	if len(c.FernetKeys) > 0 && c.FernetKeyFile != "" {
		errs = append(errs, fmt.Errorf("%s and %s are both set; use one", EnvFernetKeys, EnvFernetKeyFile))
	}
	if c.FederationExpiryWarnDays == 0 {
		c.FederationExpiryWarnDays = 14 // Apply refuses 0: unset
	}
	if c.FederationTLSDir == "" {
		// Absolute: FreeSWITCH reads it, from another working directory.
		if d, err := filepath.Abs(filepath.Join(c.DataDir, "federation-tls")); err == nil {
			c.FederationTLSDir = d
		}
	}
	if c.FernetKeyFile == "" && len(c.FernetKeys) == 0 {
		c.FernetKeyFile = filepath.Join(c.DataDir, "fernet.keys")
	}
	for _, n := range c.ESLNodes {
		h, p, err := net.SplitHostPort(n)
		if err != nil || h == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port (e.g. 127.0.0.1:8021)", EnvESLNodes, n))
			continue
		}
		if v, err := strconv.Atoi(p); err != nil || v < 1 || v > 65535 {
			errs = append(errs, fmt.Errorf("%s: %q has no valid port", EnvESLNodes, n))
		}
	}
	// Below 10 ms a node that is down would be hammered; above an hour
	// nobody would wait for it.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{EnvESLReconnectMin, c.ESLReconnectMin}, {EnvESLReconnectMax, c.ESLReconnectMax}, {EnvESLProbeInterval, c.ESLProbeInterval}} {
		if d.v < 10*time.Millisecond || d.v > time.Hour {
			errs = append(errs, fmt.Errorf("%s: %v is not between 10ms and 1h", d.name, d.v))
		}
	}
	if c.ESLReconnectMax < c.ESLReconnectMin {
		errs = append(errs, fmt.Errorf("%s: %v is below %s (%v)", EnvESLReconnectMax, c.ESLReconnectMax, EnvESLReconnectMin, c.ESLReconnectMin))
	}
	if strings.ContainsAny(c.ESLPassword, "\r\n") {
		errs = append(errs, fmt.Errorf("%s: must be one line", EnvESLPassword))
	}
	if (c.XMLCurlUser == "") != (c.XMLCurlPassword == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together", EnvXMLCurlUser, EnvXMLCurlPassword))
	}
	if strings.Contains(c.XMLCurlUser, ":") {
		errs = append(errs, fmt.Errorf("%s: must not contain ':'", EnvXMLCurlUser))
	}
	for _, ip := range []struct {
		name, v string
		v6      bool
	}{
		{EnvExternalIPv4, c.ExternalIPv4, false}, {EnvExternalIPv6, c.ExternalIPv6, true},
	} {
		if ip.v == "" {
			continue
		}
		a, err := netip.ParseAddr(ip.v)
		if err != nil || a.Is6() != ip.v6 || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("%s: %q is not an IPv%s address", ip.name, ip.v, map[bool]string{false: "4", true: "6"}[ip.v6]))
		}
	}
	errs = append(errs, c.validateRegistrar()...)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("%s: %q is not debug, info, warn or error", EnvLogLevel, c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("%s: %q is not text or json", EnvLogFormat, c.LogFormat))
	}
	if err := c.validateSTUN(); err != nil {
		errs = append(errs, err)
	}
	if c.PublicURL == "" && err == nil {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	return errors.Join(errs...)
}

// SQLitePath is the embedded database file.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "fsplane.db") }
