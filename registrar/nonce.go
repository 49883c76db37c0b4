package registrar

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Stateless nonces: base64url(8-byte big-endian Unix milliseconds ||
// 8 random bytes || first 16 bytes of HMAC-SHA256(key, timestamp || random
// || realm)). Any replica with the same key checks one without shared
// state; the random part makes every challenge's nonce its own, so that the
// replay guard (replay.go) can tell two devices of one user apart.

const (
	nonceRandLen = 8
	nonceMACLen  = 16
	nonceLen     = 8 + nonceRandLen + nonceMACLen
)

type nonceCheck int

const (
	nonceOK nonceCheck = iota
	nonceStale
	nonceBad
)

// nonceMAC authenticates the timestamp and random part (head) for realm.
func (r *Registrar) nonceMAC(head []byte, realm string) []byte {
	m := hmac.New(sha256.New, r.nonceKey)
	m.Write(head)
	m.Write([]byte(realm))
	return m.Sum(nil)[:nonceMACLen]
}

func (r *Registrar) newNonce(realm string, now time.Time) string {
	var raw [nonceLen]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(now.UnixMilli()))
	_, _ = rand.Read(raw[8 : 8+nonceRandLen]) // crypto/rand.Read never fails on supported platforms
	copy(raw[8+nonceRandLen:], r.nonceMAC(raw[:8+nonceRandLen], realm))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (r *Registrar) checkNonce(nonce, realm string, now time.Time) nonceCheck {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != nonceLen {
		return nonceBad
	}
	if !hmac.Equal(raw[8+nonceRandLen:], r.nonceMAC(raw[:8+nonceRandLen], realm)) {
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
