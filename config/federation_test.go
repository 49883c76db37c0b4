package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestFederationSettings(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.FederationExpiryWarnDays != 14 || c.FederationResolver != "" || !filepath.IsAbs(c.FederationTLSDir) ||
		!strings.HasSuffix(c.FederationTLSDir, "federation-tls") {
		t.Errorf("defaults: %d %q %q", c.FederationExpiryWarnDays, c.FederationResolver, c.FederationTLSDir)
	}
	for name, bad := range map[string]string{
		EnvFederationResolver:   "localhost",
		EnvFederationTLSDir:     "relative/dir",
		EnvFederationExpiryWarn: "0",
	} {
		if err := c.Apply(name, bad); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v", name, bad, err)
		}
	}
	for name, good := range map[string]string{
		EnvFederationResolver: "127.0.0.53:53", EnvFederationTLSDir: "/etc/freeswitch/tls/federation", EnvFederationExpiryWarn: "30",
	} {
		if err := c.Apply(name, good); err != nil {
			t.Errorf("%s=%q: %v", name, good, err)
		}
	}
	if c.FederationResolver != "127.0.0.53:53" || c.FederationTLSDir != "/etc/freeswitch/tls/federation" || c.FederationExpiryWarnDays != 30 {
		t.Errorf("%+v", c)
	}
}
