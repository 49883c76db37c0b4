package federation

import (
	"os"
	"path/filepath"
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
	for _, name := range []string{"/dev/zero", fifo, dir, big} {
		if _, err := LoadCertificate(name, ""); err == nil {
			t.Errorf("%s was read", name)
		}
	}
}
