package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Fernet specification's vectors (fernet/spec), copied into testdata.

type vector struct {
	Desc   string `json:"desc"`
	Token  string `json:"token"`
	Now    string `json:"now"`
	IVInts []int  `json:"iv"`
	Src    string `json:"src"`
	Secret string `json:"secret"`
	TTL    int    `json:"ttl_sec"`
}

func load(t *testing.T, name string) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s holds no vectors", name)
	}
	return vs
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// specToken builds a Fernet token straight from the specification with
// the standard library: version 0x80, big-endian seconds, IV, AES-128-CBC
// with PKCS#7 under the key's second half, HMAC-SHA256 under its first half.
func specToken(key []byte, ts time.Time, iv []byte, msg string) string {
	pad := aes.BlockSize - len(msg)%aes.BlockSize
	plain := append([]byte(msg), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(key[16:])
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)
	out := []byte{0x80}
	out = binary.BigEndian.AppendUint64(out, uint64(ts.Unix()))
	out = append(out, iv...)
	out = append(out, ct...)
	mac := hmac.New(sha256.New, key[:16])
	mac.Write(out)
	return base64.URLEncoding.EncodeToString(mac.Sum(out))
}

func TestSpecGenerate(t *testing.T) {
	for _, v := range load(t, "generate.json") {
		key, err := base64.URLEncoding.DecodeString(v.Secret)
		if err != nil {
			t.Fatal(err)
		}
		iv := make([]byte, len(v.IVInts))
		for i, b := range v.IVInts {
			iv[i] = byte(b)
		}
		if got := specToken(key, mustTime(t, v.Now), iv, v.Src); got != v.Token {
			t.Fatalf("spec construction %s\n              want %s", got, v.Token)
		}
		kr, err := Parse(v.Secret)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := kr.Decrypt(v.Token); err != nil || got != v.Src {
			t.Fatalf("Decrypt(generate vector) = %q, %v; want %q", got, err, v.Src)
		}
		// Our tokens are byte for byte what the spec builds from the same
		// time and IV, which the token itself carries.
		before := time.Now().Add(-time.Second)
		tok, err := kr.Encrypt(v.Src)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.URLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		ts := time.Unix(int64(binary.BigEndian.Uint64(raw[1:9])), 0)
		if ts.Before(before.Truncate(time.Second)) || ts.After(time.Now()) {
			t.Fatalf("token timestamp %v is not now", ts)
		}
		if want := specToken(key, ts, raw[9:25], v.Src); tok != want {
			t.Fatalf("Encrypt = %s\nspec gives %s", tok, want)
		}
	}
}

func TestSpecVerify(t *testing.T) {
	for _, v := range load(t, "verify.json") {
		kr, err := Parse(v.Secret)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kr.DecryptTTL(v.Token, time.Duration(v.TTL)*time.Second, mustTime(t, v.Now))
		if err != nil || got != v.Src {
			t.Errorf("DecryptTTL = %q, %v; want %q", got, err, v.Src)
		}
	}
}

func TestSpecInvalid(t *testing.T) {
	vs := load(t, "invalid.json")
	if len(vs) != 8 {
		t.Fatalf("want the spec's 8 invalid vectors, got %d", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Desc, func(t *testing.T) {
			kr, err := Parse(v.Secret)
			if err != nil {
				t.Fatal(err)
			}
			got, err := kr.DecryptTTL(v.Token, time.Duration(v.TTL)*time.Second, mustTime(t, v.Now))
			if !errors.Is(err, ErrInvalidToken) || got != "" {
				t.Fatalf("DecryptTTL = %q, %v; want ErrInvalidToken", got, err)
			}
			// Without a TTL only the time-based rejections may pass.
			if !strings.Contains(v.Desc, "TTL") && !strings.Contains(v.Desc, "clock skew") {
				if _, err := kr.Decrypt(v.Token); !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("Decrypt accepted %s", v.Desc)
				}
			}
		})
	}
}

func TestRotationRing(t *testing.T) {
	oldKey, _ := GenerateKey()
	newKey, _ := GenerateKey()
	oldRing, _ := Parse(oldKey)
	tok, err := oldRing.Encrypt("pw")
	if err != nil {
		t.Fatal(err)
	}
	both, _ := Parse(newKey, oldKey)
	if both.IsCurrent(tok) {
		t.Fatal("token under the old key reported current")
	}
	if got, err := both.Decrypt(tok); err != nil || got != "pw" {
		t.Fatalf("two-key ring cannot open old token: %v", err)
	}
	fresh, _ := both.Encrypt("pw")
	if !both.IsCurrent(fresh) {
		t.Fatal("new token not under the first key")
	}
	onlyNew, _ := Parse(newKey)
	if _, err := onlyNew.Decrypt(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("ring without the old key opened its token: %v", err)
	}
}

func TestParseNamesPositionNotKey(t *testing.T) {
	good, _ := GenerateKey()
	_, err := Parse(good, "not-a-key-but-a-secret-looking-thing")
	if err == nil || !strings.Contains(err.Error(), "key 2") || strings.Contains(err.Error(), "secret-looking") {
		t.Fatalf("error must name the position and not the value: %v", err)
	}
	if _, err := Parse(); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("empty ring: %v", err)
	}
}

func TestEnsureFileCreatesOnceWith0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "fernet.keys")
	kr, created, err := EnsureFile(path)
	if err != nil || !created || kr.Len() != 1 {
		t.Fatalf("first EnsureFile: %v created=%v", err, created)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o, want 600", st.Mode().Perm())
	}
	kr2, created, err := EnsureFile(path)
	if err != nil || created || kr2.Encoded()[0] != kr.Encoded()[0] {
		t.Fatalf("second EnsureFile must reuse the key: %v created=%v", err, created)
	}
	next, _ := GenerateKey()
	rotated, _ := Prepend(kr2, next)
	if err := WriteFile(path, rotated); err != nil {
		t.Fatal(err)
	}
	back, err := LoadFile(path)
	if err != nil || back.Len() != 2 || back.Encoded()[0] != next {
		t.Fatalf("prepended key file: %v %v", err, back.Encoded())
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("rewritten key file mode %o", st.Mode().Perm())
	}
}

// Python's cryptography.fernet is the reference the at-rest format must
// stay compatible with: a database written by the Python platform must open
// here, and ours there. Debian's python3-cryptography is the real peer.
func TestPythonCryptographyInterop(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import cryptography.fernet").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-cryptography missing under CI=true: %v", err)
		}
		t.Skip("python3-cryptography not installed (make test installs it)")
	}
	key, _ := GenerateKey()
	kr, _ := Parse(key)
	plain := "pä$${x}<&>\"'\nss"

	// Python → Go.
	script := `import sys
from cryptography.fernet import Fernet
sys.stdout.write(Fernet(sys.argv[1].encode()).encrypt(sys.argv[2].encode()).decode())`
	out, err := exec.Command(py, "-c", script, key, plain).Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := kr.Decrypt(string(out))
	if err != nil || got != plain {
		t.Fatalf("Go cannot open Python's token: %q %v", got, err)
	}

	// Go → Python.
	tok, _ := kr.Encrypt(plain)
	script = `import sys
from cryptography.fernet import Fernet
sys.stdout.write(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())`
	out, err = exec.Command(py, "-c", script, key, tok).Output()
	if err != nil || string(out) != plain {
		t.Fatalf("Python cannot open Go's token: %q %v", out, err)
	}

	// A key made by Python's Fernet.generate_key() works here.
	out, err = exec.Command(py, "-c", "from cryptography.fernet import Fernet;print(Fernet.generate_key().decode())").Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(strings.TrimSpace(string(out))); err != nil {
		t.Fatalf("Python's key rejected: %v", err)
	}
}

func FuzzDecrypt(f *testing.F) {
	for _, s := range []string{"", "gAAAAA", "%%%", "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA=="} {
		f.Add(s)
	}
	kr, _ := Parse("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")
	f.Fuzz(func(t *testing.T, tok string) {
		msg, err := kr.Decrypt(tok)
		if err != nil && msg != "" {
			t.Fatalf("error with a message: %q", msg)
		}
	})
}
