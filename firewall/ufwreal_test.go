package firewall

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
)

// realUFW runs the real ufw in a network namespace of the test's own, on
// a private copy of /etc/ufw bind-mounted over the original in a mount
// namespace of each call: the host's firewall and files stay untouched.
type realUFW struct {
	t          *testing.T
	ip, ns     string
	unshare    string
	etc        string
	bin        string
	scriptsDir string
}

func newRealUFW(t *testing.T) *realUFW {
	u := &realUFW{t: t, bin: needTool(t, "ufw"), ip: needTool(t, "ip"), unshare: needTool(t, "unshare")}
	u.ns = newNetns(t, u.ip)
	u.etc = filepath.Join(t.TempDir(), "ufw")
	if err := os.CopyFS(u.etc, os.DirFS("/etc/ufw")); err != nil {
		t.Fatal(err)
	}
	// The namespace has its own net sysctls, but nothing here needs them.
	if err := os.WriteFile(filepath.Join(u.etc, "sysctl.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	u.scriptsDir = t.TempDir()
	return u
}

// sh runs a shell script in the namespace with the private /etc/ufw.
func (u *realUFW) sh(script string) string {
	u.t.Helper()
	f, err := os.CreateTemp(u.scriptsDir, "*.sh")
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := f.WriteString("set -e\n" + script); err != nil {
		u.t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(u.ip, "netns", "exec", u.ns, u.unshare, "--mount", "sh", "-c",
		`mount --bind "$1" /etc/ufw && exec sh "$2"`, "sh", u.etc, f.Name())
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PATH="+filepath.Dir(u.bin)+":"+os.Getenv("PATH"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		u.t.Fatalf("in namespace:\n%s\n%v\n%s%s", script, err, out.String(), stderr.String())
	}
	return out.String()
}

func (u *realUFW) diff(pol *Policy) UFWDiff {
	u.t.Helper()
	st, err := ParseUFWStatus(strings.NewReader(u.sh("ufw status\n")))
	if err != nil {
		u.t.Fatal(err)
	}
	if st.Inactive {
		u.t.Fatal("ufw inactive")
	}
	return DiffUFW(pol, st)
}

// TestUFWDiffReal walks an operator from the seed's hand-written rules to
// fsplane's with the real UFW: the diff adopts the hand-written rules,
// deletes a stale fsplane rule, leaves the operator's own rule alone; the
// script it prints runs; afterwards the diff is empty; a removed range
// shows up as deletes; the export re-run changes nothing.
func TestUFWDiffReal(t *testing.T) {
	t.Parallel()
	u := newRealUFW(t)
	hand, err := os.ReadFile(filepath.Join("testdata", "seed_002_runbook.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var setup strings.Builder
	setup.WriteString("ufw --force enable\nufw allow 22/tcp\n")
	for _, l := range strings.Split(string(hand), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "ufw allow ") {
			setup.WriteString(l + "\n")
		}
	}
	setup.WriteString("ufw allow from 10.0.0.0/8 to any port 5060 proto udp comment 'fsplane:Old'\n")
	u.sh(setup.String())

	ranges := seedRanges()
	pol, err := NewPolicy(ranges, seedProfiles())
	if err != nil {
		t.Fatal(err)
	}
	d := u.diff(pol)
	if len(d.Add) != 0 || len(d.Update) != len(pol.Rules) || len(d.Delete) != 1 || len(d.Review) != 0 || d.InSync != 0 {
		t.Fatalf("diff against the hand-written rules:\n%s", d.Script())
	}
	u.sh(string(d.Script()))
	if d := u.diff(pol); !d.Empty() || d.InSync != len(pol.Rules) {
		t.Fatalf("after applying the diff:\n%s", d.Script())
	}
	status := u.sh("ufw status\n")
	st, err := ParseUFWStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	ssh := 0
	for _, e := range st.Entries {
		if e.Shaped && e.Port == (PortSpec{22, 22, "tcp"}) && e.Comment == "" && !e.Source.IsValid() {
			ssh++
		}
	}
	if ssh != 2 || strings.Contains(status, "10.0.0.0/8") {
		t.Fatalf("status after applying (want the operator's 22/tcp, v4 and v6, and no 10.0.0.0/8):\n%s", status)
	}

	// The operator deletes a plusnet range.
	var fewer []models.ProviderRange
	for _, r := range ranges {
		if r.CIDR != "92.197.182.0/24" {
			fewer = append(fewer, r)
		}
	}
	pol2, err := NewPolicy(fewer, seedProfiles())
	if err != nil {
		t.Fatal(err)
	}
	d = u.diff(pol2)
	want := "ufw delete allow from 92.197.182.0/24 to any port 5060 proto udp\nufw delete allow from 92.197.182.0/24 to any port 5061 proto tcp\n"
	if len(d.Add)+len(d.Update)+len(d.Review) != 0 || !strings.HasSuffix(string(d.Script()), want) {
		t.Fatalf("diff after removing a range:\n%s", d.Script())
	}
	u.sh(string(d.Script()))
	if d := u.diff(pol2); !d.Empty() {
		t.Fatalf("after deleting:\n%s", d.Script())
	}

	// Running the export again changes nothing.
	before := u.sh("ufw status verbose\n")
	out := u.sh(string(pol2.UFW()))
	// One line per rule, and one more for the IPv6 twin of a rule from
	// anywhere.
	want2 := len(pol2.Rules)
	for _, r := range pol2.Rules {
		if !r.Source.IsValid() {
			want2++
		}
	}
	if n := strings.Count(out, "Skipping adding existing rule"); n != want2 || strings.Contains(out, "Rule ") {
		t.Errorf("re-run skipped %d, want %d:\n%s", n, want2, out)
	}
	if after := u.sh("ufw status verbose\n"); after != before {
		t.Errorf("re-run changed UFW:\n%s\nthen:\n%s", before, after)
	}
}
