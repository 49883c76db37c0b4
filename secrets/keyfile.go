package secrets

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadFile reads a key file: one key per line, newest first; blank lines
// and lines starting with '#' are ignored.
func LoadFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: open key file: %w", err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("secrets: read key file %s: %w", path, err)
	}
	kr, err := Parse(keys...)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return kr, nil
}

// EnsureFile loads the key file at path, creating it with one new key
// (mode 0600) when it does not exist. created tells which happened.
func EnsureFile(path string) (kr *Keyring, created bool, err error) {
	kr, err = LoadFile(path)
	if err == nil {
		return kr, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, false, err
	}
	if err := writeFile(path, []string{key}, true); err != nil {
		return nil, false, err
	}
	kr, err = LoadFile(path)
	return kr, err == nil, err
}

// WriteFile replaces the key file at path with kr's keys, atomically and
// with mode 0600.
func WriteFile(path string, kr *Keyring) error {
	return writeFile(path, kr.Encoded(), false)
}

func writeFile(path string, keys []string, exclusive bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("secrets: create key directory: %w", err)
	}
	body := "# fsplane Fernet keys, newest first: the first encrypts, all decrypt.\n" +
		strings.Join(keys, "\n") + "\n"
	if exclusive {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("secrets: create key file: %w", err)
		}
		if _, err := f.WriteString(body); err != nil {
			f.Close()
			return fmt.Errorf("secrets: write key file: %w", err)
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return fmt.Errorf("secrets: write key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: write key file: %w", err)
	}
	if _, err := tmp.WriteString(body); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("secrets: write key file: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// Prepend returns a ring with a new key in front of kr's.
func Prepend(kr *Keyring, key string) (*Keyring, error) {
	return Parse(append([]string{key}, kr.Encoded()...)...)
}
