package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadFileGood(t *testing.T) {
	c := Default()
	if err := c.LoadFile("testdata/good.conf"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9001" || len(c.ESLNodes) != 2 || c.ESLNodes[1] != "10.0.0.2:8021" ||
		c.XMLCurlCacheable != 5*time.Minute || c.XMLCurlNetworks[1].String() != "10.0.0.0/24" ||
		c.FernetKeyFile != "/var/lib/fsplane/fernet.keys" || c.PublicURL != "http://127.0.0.1:9001" ||
		c.ESLReconnectMin != 500*time.Millisecond || c.ESLReconnectMax != 5*time.Second || c.ESLProbeInterval != 250*time.Millisecond {
		t.Fatalf("loaded %+v", c)
	}
}

func TestPrecedenceEnvOverFile(t *testing.T) {
	c := Default()
	if err := c.LoadFile("testdata/good.conf"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvListen: ":8443"}
	if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.Listen != ":8443" || c.PublicURL != "http://127.0.0.1:8443" {
		t.Fatalf("env must override the file: %v %+v", err, c)
	}
}

func TestBad(t *testing.T) {
	for _, tc := range []struct {
		name, value, wantErr string
	}{
		{EnvListen, "8001", "not host:port"},
		{EnvListen, ":99999", "out of range"},
		{EnvESLNodes, "fs1", "not host:port"},
		{EnvESLNodes, "fs1:0", "no valid port"},
		{EnvESLPassword, "a\nb", "one line"},
		{EnvXMLCurlUser, "a:b", "must not contain"},
		{EnvExternalIPv4, "2001:db8::1", "not an IPv4"},
		{EnvExternalIPv6, "46.4.96.105", "not an IPv6"},
		{EnvLogLevel, "trace", "not debug"},
		{EnvLogFormat, "yaml", "not text or json"},
		{EnvDatabaseURL, "mysql://x", "postgres://"},
		{EnvDataDir, "", "must not be empty"},
		{EnvESLReconnectMin, "1ms", "between 10ms and 1h"},
		{EnvESLReconnectMin, "-1s", "between 10ms and 1h"},
		{EnvESLReconnectMax, "2h", "between 10ms and 1h"},
		{EnvESLReconnectMax, "100ms", "below FSPLANE_ESL_RECONNECT_MIN"},
		{EnvESLProbeInterval, "0s", "between 10ms and 1h"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			c := Default()
			c.XMLCurlPassword = "x" // keep the user/password pairing rule quiet
			if tc.name != EnvXMLCurlUser {
				c.XMLCurlPassword = ""
			}
			err := c.Apply(tc.name, tc.value)
			if err == nil {
				if tc.name == EnvDataDir {
					c.DataDir = ""
				}
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("got %v, want an error naming %s containing %q", err, tc.name, tc.wantErr)
			}
		})
	}
	for _, tc := range []struct{ name, value, wantErr string }{
		{EnvXMLCurlNetworks, "10.0.0.0/33", "not a CIDR"},
		{EnvXMLCurlCacheable, "soon", "not a duration"},
		{EnvTokenCacheTTL, "soon", "not a duration"},
		{EnvTokenCacheTTL, "-1s", "not a duration"},
		{EnvTokenCacheTTL, "2h", "revoked token would keep working"},
		{EnvESLAllowRestart, "maybe", "true or false"},
		{EnvESLReconnectMin, "soon", "not a duration"},
		{EnvESLProbeInterval, "1", "not a duration"},
	} {
		c := Default()
		if err := c.Apply(tc.name, tc.value); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s=%s: got %v", tc.name, tc.value, err)
		}
	}
}

func TestFileErrorsNameTheLine(t *testing.T) {
	for file, want := range map[string]string{
		"testdata/bad-syntax.conf": "line 2: want NAME=value",
		"testdata/unknown.conf":    "line 2: unknown setting FSPLANE_BOGUS",
	} {
		c := Default()
		if err := c.LoadFile(file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", file, err, want)
		}
	}
}

func TestBothKeySourcesRefused(t *testing.T) {
	c := Default()
	c.FernetKeys = []string{"k"}
	c.FernetKeyFile = "/x"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "use one") {
		t.Fatalf("got %v", err)
	}
}

func TestTokenCacheTTL(t *testing.T) {
	c := Default()
	if c.TokenCacheTTL != time.Minute {
		t.Fatalf("default %s, want 1m", c.TokenCacheTTL)
	}
	for value, want := range map[string]time.Duration{"0": 0, "15s": 15 * time.Second, "1h": time.Hour} {
		if err := c.Apply(EnvTokenCacheTTL, value); err != nil || c.TokenCacheTTL != want {
			t.Errorf("%s: %s, %v", value, c.TokenCacheTTL, err)
		}
	}
}
