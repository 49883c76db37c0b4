package firewall

import (
	"os"
	"os/exec"
	"testing"
)

// needTool returns the path of a Debian tool the test runs for real, as
// root. Missing (or not root) it skips locally and fails under CI=true:
// scripts/test-peers.sh installs the tools there.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin/", "/sbin/"} {
			if _, serr := os.Stat(dir + name); serr == nil {
				path, err = dir+name, nil
				break
			}
		}
	}
	why := ""
	switch {
	case err != nil:
		why = name + " is not installed (Debian: see scripts/test-peers.sh)"
	case os.Geteuid() != 0:
		why = name + " needs root here"
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s", why)
		}
		t.Skipf("skipping: %s", why)
	}
	return path
}
