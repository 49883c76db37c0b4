package federation

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Paths come from the API: a device, a FIFO or an oversized file is
// refused before anything hangs or fills memory.
func TestReadPEMFileRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, maxPEMFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"/dev/zero": "not a regular file", fifo: "not a regular file",
		dir: "not a regular file", big: "larger than"} {
		if _, err := LoadCertificate(name, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}
