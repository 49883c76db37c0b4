package config

import (
	"strings"
	"testing"
	"time"
)

func TestSTUNSettings(t *testing.T) {
	load := func(env map[string]string) (Config, error) {
		c := Default()
		if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
			return c, err
		}
		return c, c.Validate()
	}
	c, err := load(nil)
	if err != nil || c.STUN.Primary.IsValid() || c.STUN.RateLimit != DefaultSTUNRateLimit {
		t.Fatalf("unset: STUN must be off with the default rate: %v %+v", err, c.STUN)
	}
	c, err = load(map[string]string{
		EnvSTUNPrimary: "127.0.0.1:3478", EnvSTUNSecondary: "127.0.0.2:3479",
		EnvSTUNPrimaryAdvertised: "203.0.113.1", EnvSTUNSecondaryAdvertised: "203.0.113.2", EnvSTUNRateLimit: "0",
	})
	if err != nil || c.STUN.Primary.String() != "127.0.0.1:3478" || c.STUN.Secondary.String() != "127.0.0.2:3479" ||
		c.STUN.PrimaryAdvertised.String() != "203.0.113.1" || c.STUN.SecondaryAdvertised.String() != "203.0.113.2" || c.STUN.RateLimit != 0 {
		t.Fatalf("%v %+v", err, c.STUN)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvSTUNPrimary: "stun.example.org:3478"}, "FSPLANE_STUN_PRIMARY: \"stun.example.org:3478\" is not IP:port"},
		{map[string]string{EnvSTUNPrimary: "127.0.0.1"}, "is not IP:port"},
		{map[string]string{EnvSTUNSecondary: "127.0.0.2:3479"}, "need FSPLANE_STUN_PRIMARY"},
		{map[string]string{EnvSTUNPrimary: "127.0.0.1:3478", EnvSTUNSecondary: "127.0.0.1:3478"}, "must differ from the primary"},
		{map[string]string{EnvSTUNPrimary: "127.0.0.1:3478", EnvSTUNSecondary: "[::1]:3479"}, "family"},
		{map[string]string{EnvSTUNPrimary: "127.0.0.1:3478", EnvSTUNPrimaryAdvertised: "x"}, "not an IP address"},
		{map[string]string{EnvSTUNPrimary: "127.0.0.1:3478", EnvSTUNRateLimit: "-1"}, "requests per second"},
	} {
		if _, err := load(tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.env, err, tc.want)
		}
	}
}

func TestSTUNProbeSettings(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil || c.STUNProbeServer != "" || c.STUNProbeInterval != 5*time.Minute {
		t.Fatalf("defaults: %q %v", c.STUNProbeServer, c.STUNProbeInterval)
	}
	if err := c.Apply(EnvSTUNProbeServer, "stun.example.org:3478"); err != nil || c.STUNProbeServer != "stun.example.org:3478" {
		t.Fatal(err)
	}
	if err := c.Apply(EnvSTUNProbeInterval, "30s"); err != nil || c.STUNProbeInterval != 30*time.Second {
		t.Fatal(err)
	}
	for name, v := range map[string]string{EnvSTUNProbeServer: "stun.example.org", EnvSTUNProbeInterval: "1ns"} {
		if err := c.Apply(name, v); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v", name, v, err)
		}
	}
}
