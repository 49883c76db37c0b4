package config

import (
	"strings"
	"testing"
)

func TestRegistrarSettings(t *testing.T) {
	c := Default()
	if c.Registrar.Listen != "" || c.Registrar.DefaultExpires != 3600 || c.Registrar.MinExpires != 60 || c.Registrar.MaxExpires != 7200 {
		t.Fatalf("defaults %+v: want off, seed 001's 3600/60/7200", c.Registrar)
	}
	env := map[string]string{
		EnvRegistrarListen: "127.0.0.1", EnvRegistrarDefaultExpires: "1800", EnvRegistrarMinExpires: "30",
		EnvRegistrarMaxExpires: "3600", EnvRegistrarMaxContacts: "3", EnvRegistrarMaxBindings: "50",
		EnvRegistrarDigest: "md5, sha-256",
	}
	if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := c.Registrar
	if r.Listen != "127.0.0.1:5070" || r.DefaultExpires != 1800 || r.MinExpires != 30 || r.MaxExpires != 3600 || r.MaxContacts != 3 || r.MaxBindings != 50 ||
		strings.Join(r.DigestAlgorithms, ",") != "MD5,SHA-256" {
		t.Fatalf("loaded %+v", r)
	}
	c = Default()
	if err := c.Apply(EnvRegistrarListen, "[::1]"); err != nil || c.Registrar.Listen != "[::1]:5070" {
		t.Fatalf("bare IPv6 host: %q %v", c.Registrar.Listen, err)
	}
	if err := c.Apply(EnvRegistrarListen, "127.0.0.2:5080"); err != nil || c.Registrar.Listen != "127.0.0.2:5080" {
		t.Fatalf("host:port: %q %v", c.Registrar.Listen, err)
	}
	if c.Registrar.Trusted != nil {
		t.Fatalf("trusted networks by default %v, want nil (the registrar's loopback)", c.Registrar.Trusted)
	}
	if err := c.Apply(EnvRegistrarTrusted, "192.0.2.10/32, 2001:db8::/64"); err != nil || len(c.Registrar.Trusted) != 2 ||
		c.Registrar.Trusted[1].String() != "2001:db8::/64" {
		t.Fatalf("trusted %v %v", c.Registrar.Trusted, err)
	}
	if err := c.Apply(EnvRegistrarTrusted, "none"); err != nil || c.Registrar.Trusted == nil || len(c.Registrar.Trusted) != 0 {
		t.Fatalf("none: %v %v", c.Registrar.Trusted, err)
	}
	if err := c.Apply(EnvRegistrarTrusted, "192.0.2.10"); err == nil || !strings.Contains(err.Error(), "not a CIDR") {
		t.Fatalf("a bare address: %v", err)
	}
}

func TestRegistrarBad(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{EnvRegistrarMinExpires: "0"}, "at least 1"},
		{map[string]string{EnvRegistrarMaxContacts: "many"}, "not a whole number"},
		{map[string]string{EnvRegistrarMinExpires: "600", EnvRegistrarDefaultExpires: "300"}, "must lie between"},
		{map[string]string{EnvRegistrarMaxExpires: "100"}, "must lie between"},
		{map[string]string{EnvRegistrarTLSCert: "/tmp/c.pem"}, "go together"},
		{map[string]string{EnvRegistrarListen: "127.0.0.1:70000"}, "not host:port"},
		{map[string]string{EnvRegistrarDigest: "SHA-512"}, "SHA-256 and/or MD5"},
		{map[string]string{EnvRegistrarDigest: "md5,MD5"}, "each once"},
	} {
		c := Default()
		err := c.LoadEnv(func(k string) string { return tc.env[k] })
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: got %v, want an error with %q", tc.env, err, tc.wantErr)
		}
	}
}
