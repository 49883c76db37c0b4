package secrets

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/fernet/fernet-go"
)

// maxClockSkew is the Fernet spec's allowance for tokens from the future,
// applied only when a TTL is checked (as Python's cryptography does).
const maxClockSkew = 60 * time.Second

// Keyring encrypts with its first key and decrypts with any of its keys.
// It is safe for concurrent use.
type Keyring struct {
	keys []*fernet.Key
	enc  []string // encoded keys, to compare rings without exposing them
}

// Parse builds a ring from encoded keys, newest first. An error names the
// position of a bad key, never the key.
func Parse(encoded ...string) (*Keyring, error) {
	kr := &Keyring{}
	for i, s := range encoded {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		k, err := fernet.DecodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d is not a Fernet key (32 bytes, URL-safe base64)", i+1)
		}
		kr.keys = append(kr.keys, k)
		kr.enc = append(kr.enc, k.Encode())
	}
	if len(kr.keys) == 0 {
		return nil, ErrNoKeys
	}
	return kr, nil
}

// GenerateKey returns a new random key in the encoding Python's
// Fernet.generate_key() uses.
func GenerateKey() (string, error) {
	var k fernet.Key
	if err := k.Generate(); err != nil {
		return "", fmt.Errorf("secrets: generate key: %w", err)
	}
	return k.Encode(), nil
}

// Len returns the number of keys.
func (kr *Keyring) Len() int { return len(kr.keys) }

// Encoded returns the encoded keys, newest first, for writing a key file.
func (kr *Keyring) Encoded() []string { return append([]string(nil), kr.enc...) }

// Encrypt seals plaintext under the newest key.
func (kr *Keyring) Encrypt(plaintext string) (string, error) {
	tok, err := fernet.EncryptAndSign([]byte(plaintext), kr.keys[0])
	if err != nil {
		return "", fmt.Errorf("secrets: encrypt: %w", err)
	}
	return string(tok), nil
}

// Decrypt opens a token with any key of the ring. Tokens do not expire.
func (kr *Keyring) Decrypt(token string) (string, error) {
	return kr.open(token, kr.keys)
}

// DecryptTTL opens a token that must have been made within ttl before now
// and not more than the spec's clock skew after it.
func (kr *Keyring) DecryptTTL(token string, ttl time.Duration, now time.Time) (string, error) {
	raw, err := decode(token)
	if err != nil {
		return "", err
	}
	ts := time.Unix(int64(binary.BigEndian.Uint64(raw[1:9])), 0)
	if now.After(ts.Add(ttl)) || ts.After(now.Add(maxClockSkew)) {
		return "", ErrInvalidToken
	}
	return kr.open(token, kr.keys)
}

// IsCurrent reports whether token is sealed under the newest key, so that
// rotation can skip it.
func (kr *Keyring) IsCurrent(token string) bool {
	_, err := kr.open(token, kr.keys[:1])
	return err == nil
}

func (kr *Keyring) open(token string, keys []*fernet.Key) (string, error) {
	if _, err := decode(token); err != nil {
		return "", err
	}
	// ttl 0: stored passwords do not expire (as Python's decrypt without ttl).
	msg := fernet.VerifyAndDecrypt([]byte(token), 0, keys)
	if msg == nil {
		return "", ErrInvalidToken
	}
	return string(msg), nil
}

// decode checks the token's outer form strictly: URL-safe base64 with
// padding, version byte 0x80, and room for timestamp, IV, one block and MAC.
func decode(token string) ([]byte, error) {
	raw, err := base64.URLEncoding.DecodeString(token)
	if err != nil || len(raw) < 1+8+16+16+32 || raw[0] != 0x80 {
		return nil, ErrInvalidToken
	}
	if (len(raw)-1-8-16-32)%16 != 0 {
		return nil, ErrInvalidToken
	}
	return raw, nil
}
