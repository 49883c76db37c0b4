package registrar

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Stateless nonces: base64url(8-byte big-endian Unix milliseconds ||
// first 16 bytes of HMAC-SHA256(key, timestamp || realm)). Any replica with
// the same key checks one without shared state.

const nonceMACLen = 16

type nonceCheck int

const (
	nonceOK nonceCheck = iota
	nonceStale
	nonceBad
)

func (r *Registrar) nonceMAC(ts []byte, realm string) []byte {
	m := hmac.New(sha256.New, r.nonceKey)
	m.Write(ts)
	m.Write([]byte(realm))
	return m.Sum(nil)[:nonceMACLen]
}

func (r *Registrar) newNonce(realm string, now time.Time) string {
	var raw [8 + nonceMACLen]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(now.UnixMilli()))
	copy(raw[8:], r.nonceMAC(raw[:8], realm))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (r *Registrar) checkNonce(nonce, realm string, now time.Time) nonceCheck {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 8+nonceMACLen {
		return nonceBad
	}
	if !hmac.Equal(raw[8:], r.nonceMAC(raw[:8], realm)) {
		return nonceBad
	}
	issued := time.UnixMilli(int64(binary.BigEndian.Uint64(raw[:8])))
	age := now.Sub(issued)
	// A little clock skew between replicas is tolerated.
	if age > r.opt.NonceTTL || age < -5*time.Second {
		return nonceStale
	}
	return nonceOK
}
