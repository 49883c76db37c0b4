package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Registrar holds the settings of fsplane's own SIP registrar (package
// registrar). It runs only when Listen is set.
type Registrar struct {
	// Listen is host:port for UDP and TCP (FSPLANE_REGISTRAR_LISTEN); a
	// bare host gets port 5070, beside FreeSWITCH's 5060. Empty: off.
	Listen string
	// DefaultExpires, MinExpires and MaxExpires are the expiry policy in
	// seconds (FSPLANE_REGISTRAR_DEFAULT_EXPIRES, …_MIN_EXPIRES,
	// …_MAX_EXPIRES).
	DefaultExpires, MinExpires, MaxExpires int
	// MaxContacts per AOR and MaxBindings in all
	// (FSPLANE_REGISTRAR_MAX_CONTACTS, FSPLANE_REGISTRAR_MAX_BINDINGS).
	MaxContacts, MaxBindings int
	// TLSCert and TLSKey are PEM files; with both, TLS is served on
	// TLSListen (FSPLANE_REGISTRAR_TLS_CERT, …_TLS_KEY, …_TLS_LISTEN;
	// default Listen's host, port + 1).
	TLSCert, TLSKey, TLSListen string
	// DigestAlgorithms are offered in this order
	// (FSPLANE_REGISTRAR_DIGEST_ALGORITHMS, default SHA-256,MD5): clients
	// use the topmost they support; sipp and some old phones read only
	// the first, so MD5,SHA-256 serves them.
	DigestAlgorithms []string
	// Trusted are the source networks whose requests the proxy forwards
	// without credentials (FSPLANE_REGISTRAR_TRUSTED_NETWORKS, CIDRs;
	// "none" trusts nobody). Nil: loopback, where FreeSWITCH usually is.
	Trusted []netip.Prefix
}

// Registrar setting names.
const (
	EnvRegistrarListen         = "FSPLANE_REGISTRAR_LISTEN"
	EnvRegistrarDefaultExpires = "FSPLANE_REGISTRAR_DEFAULT_EXPIRES"
	EnvRegistrarMinExpires     = "FSPLANE_REGISTRAR_MIN_EXPIRES"
	EnvRegistrarMaxExpires     = "FSPLANE_REGISTRAR_MAX_EXPIRES"
	EnvRegistrarMaxContacts    = "FSPLANE_REGISTRAR_MAX_CONTACTS"
	EnvRegistrarMaxBindings    = "FSPLANE_REGISTRAR_MAX_BINDINGS"
	EnvRegistrarTLSCert        = "FSPLANE_REGISTRAR_TLS_CERT"
	EnvRegistrarTLSKey         = "FSPLANE_REGISTRAR_TLS_KEY"
	EnvRegistrarTLSListen      = "FSPLANE_REGISTRAR_TLS_LISTEN"
	EnvRegistrarDigest         = "FSPLANE_REGISTRAR_DIGEST_ALGORITHMS"
	EnvRegistrarTrusted        = "FSPLANE_REGISTRAR_TRUSTED_NETWORKS"
)

// DefaultRegistrarPort is the registrar's port when FSPLANE_REGISTRAR_LISTEN
// names only a host: beside FreeSWITCH on the same host.
const DefaultRegistrarPort = "5070"

// defaultRegistrar is the seed's policy (3600 s, 60 s, 7200 s).
func defaultRegistrar() Registrar {
	return Registrar{DefaultExpires: 3600, MinExpires: 60, MaxExpires: 7200, MaxContacts: 10, MaxBindings: 100000,
		DigestAlgorithms: []string{"SHA-256", "MD5"}}
}

var registrarSettings = []string{
	EnvRegistrarListen, EnvRegistrarDefaultExpires, EnvRegistrarMinExpires, EnvRegistrarMaxExpires,
	EnvRegistrarMaxContacts, EnvRegistrarMaxBindings, EnvRegistrarTLSCert, EnvRegistrarTLSKey, EnvRegistrarTLSListen,
	EnvRegistrarDigest, EnvRegistrarTrusted,
}

// Kept apart from the main list so the registrar's settings are one block.
func init() { Settings = append(Settings, registrarSettings...) }

// applyRegistrar is Apply for the registrar's names; ok is false for any
// other name.
func (c *Config) applyRegistrar(name, value string) (ok bool, err error) {
	num := func(dst *int, min int) error {
		n, err := strconv.Atoi(value)
		if err != nil || n < min {
			return fmt.Errorf("%s: %q is not a whole number of at least %d", name, value, min)
		}
		*dst = n
		return nil
	}
	r := &c.Registrar
	switch name {
	case EnvRegistrarListen:
		r.Listen = value
		if value != "" {
			if _, _, err := net.SplitHostPort(value); err != nil {
				// A bare host (or bracketed IPv6 address): the default port.
				host := value
				if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
					host = host[1 : len(host)-1]
				}
				r.Listen = net.JoinHostPort(host, DefaultRegistrarPort)
			}
		}
	case EnvRegistrarDefaultExpires:
		return true, num(&r.DefaultExpires, 1)
	case EnvRegistrarMinExpires:
		return true, num(&r.MinExpires, 1)
	case EnvRegistrarMaxExpires:
		return true, num(&r.MaxExpires, 1)
	case EnvRegistrarMaxContacts:
		return true, num(&r.MaxContacts, 1)
	case EnvRegistrarMaxBindings:
		return true, num(&r.MaxBindings, 1)
	case EnvRegistrarTLSCert:
		r.TLSCert = value
	case EnvRegistrarTLSKey:
		r.TLSKey = value
	case EnvRegistrarTLSListen:
		r.TLSListen = value
	case EnvRegistrarDigest:
		algs := splitList(strings.ToUpper(value))
		if len(algs) == 0 {
			return true, fmt.Errorf("%s: name SHA-256 and/or MD5", name)
		}
		for i, a := range algs {
			if a != "SHA-256" && a != "MD5" || slices.Contains(algs[:i], a) {
				return true, fmt.Errorf("%s: %q: want SHA-256 and/or MD5, each once", name, value)
			}
		}
		r.DigestAlgorithms = algs
	case EnvRegistrarTrusted:
		r.Trusted = nil
		if strings.EqualFold(strings.TrimSpace(value), "none") {
			r.Trusted = []netip.Prefix{}
			break
		}
		for _, c := range splitList(value) {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return true, fmt.Errorf("%s: %q is not a CIDR (e.g. 192.0.2.10/32), or none", name, c)
			}
			r.Trusted = append(r.Trusted, p.Masked())
		}
	default:
		return false, nil
	}
	return true, nil
}

// validateRegistrar checks the registrar's settings as a whole.
func (c *Config) validateRegistrar() []error {
	r := c.Registrar
	var errs []error
	for _, a := range []struct{ name, v string }{{EnvRegistrarListen, r.Listen}, {EnvRegistrarTLSListen, r.TLSListen}} {
		if a.v == "" {
			continue
		}
		_, port, err := net.SplitHostPort(a.v)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port (e.g. 127.0.0.1:5070)", a.name, a.v))
		}
	}
	if !(r.MinExpires <= r.DefaultExpires && r.DefaultExpires <= r.MaxExpires) {
		errs = append(errs, fmt.Errorf("%s (%d) must lie between %s (%d) and %s (%d)", EnvRegistrarDefaultExpires, r.DefaultExpires,
			EnvRegistrarMinExpires, r.MinExpires, EnvRegistrarMaxExpires, r.MaxExpires))
	}
	if (r.TLSCert == "") != (r.TLSKey == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together", EnvRegistrarTLSCert, EnvRegistrarTLSKey))
	}
	if r.TLSListen != "" && r.TLSCert == "" {
		errs = append(errs, errors.New(EnvRegistrarTLSListen+" needs "+EnvRegistrarTLSCert+" and "+EnvRegistrarTLSKey))
	}
	return errs
}
