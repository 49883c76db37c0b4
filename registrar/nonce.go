package registrar

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
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
	nonceEncLen  = (nonceLen*8 + 5) / 6 // unpadded base64
)

type nonceCheck int

const (
	nonceOK nonceCheck = iota
	nonceStale
	nonceBad
)

// nonceMAC appends the MAC of the timestamp and random part (head) for
// realm to dst. The keyed HMACs are pooled, each with a buffer for its
// input: hmac.New costs two hash states and the key schedule, and a byte
// slice handed to an interface method escapes, twice per registration.
func (r *Registrar) nonceMAC(dst, head []byte, realm string) []byte {
	m, _ := r.macs.Get().(*nonceHMAC)
	if m == nil {
		m = &nonceHMAC{h: hmac.New(sha256.New, r.nonceKey)}
	}
	m.h.Reset()
	m.buf = append(append(m.buf[:0], head...), realm...)
	m.h.Write(m.buf)
	m.sum = m.h.Sum(m.sum[:0])
	dst = append(dst, m.sum[:nonceMACLen]...)
	r.macs.Put(m)
	return dst
}

type nonceHMAC struct {
	h        hash.Hash
	buf, sum []byte
}

func (r *Registrar) newNonce(realm string, now time.Time) string {
	var raw [nonceLen]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(now.UnixMilli()))
	_, _ = rand.Read(raw[8 : 8+nonceRandLen]) // crypto/rand.Read never fails on supported platforms
	r.nonceMAC(raw[:8+nonceRandLen], raw[:8+nonceRandLen], realm)
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (r *Registrar) checkNonce(nonce, realm string, now time.Time) nonceCheck {
	var enc [nonceEncLen]byte
	var raw [nonceLen]byte
	if len(nonce) != nonceEncLen {
		return nonceBad
	}
	copy(enc[:], nonce)
	if n, err := base64.RawURLEncoding.Decode(raw[:], enc[:]); err != nil || n != nonceLen {
		return nonceBad
	}
	var mac [nonceMACLen]byte
	if !hmac.Equal(raw[8+nonceRandLen:], r.nonceMAC(mac[:0], raw[:8+nonceRandLen], realm)) {
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
