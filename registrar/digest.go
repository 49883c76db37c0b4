package registrar

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/icholy/digest"
)

// Digest on the REGISTER path, without github.com/icholy/digest's costs
// per request (a 4 KiB reader and a rune slice per header parsed, a hash
// and several strings per response computed): the same grammar and the
// same results, held to icholy/digest by FuzzParseCredentials and by the
// tests, whose clients compute their answers with it.

// credentials are the fields of a Digest Authorization the registrar
// reads.
type credentials struct {
	username, realm, nonce, uri, response, algorithm, cnonce, qop string
	nc                                                            int
}

var errCredentials = errors.New("digest: invalid credentials")

// parseCredentials parses a Digest Authorization header value as
// digest.ParseCredentials does: comma-separated key=value pairs, values a
// token ([A-Za-z0-9-]*) or a quoted string with backslash escapes, spaces
// (only) around them, the last of a repeated key winning, nc in hex. A
// value with a non-ASCII byte goes to digest.ParseCredentials itself
// (its rune handling), which is rare enough not to matter.
func parseCredentials(s string) (credentials, error) {
	var c credentials
	if !digest.IsDigest(s) {
		return c, errCredentials
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return slowCredentials(s)
		}
	}
	p := s[len(digest.Prefix):]
	for first := true; ; first = false {
		p = skipSpaces(p)
		if p == "" {
			return c, nil
		}
		if !first {
			if p[0] != ',' {
				return c, errCredentials
			}
			p = skipSpaces(p[1:])
		}
		var key, value string
		key, p = cutToken(p)
		p = skipSpaces(p)
		if p == "" || p[0] != '=' {
			return c, errCredentials
		}
		p = skipSpaces(p[1:])
		if p != "" && p[0] == '"' {
			var ok bool
			if value, p, ok = cutQuoted(p); !ok {
				return c, errCredentials
			}
		} else {
			value, p = cutToken(p)
		}
		switch key {
		case "username":
			c.username = value
		case "realm":
			c.realm = value
		case "nonce":
			c.nonce = value
		case "uri":
			c.uri = value
		case "response":
			c.response = value
		case "algorithm":
			c.algorithm = value
		case "cnonce":
			c.cnonce = value
		case "qop":
			c.qop = value
		case "nc":
			nc, err := strconv.ParseInt(value, 16, 32)
			if err != nil {
				return c, errCredentials
			}
			c.nc = int(nc)
		}
	}
}

func slowCredentials(s string) (credentials, error) {
	d, err := digest.ParseCredentials(s)
	if err != nil {
		return credentials{}, err
	}
	return credentials{username: d.Username, realm: d.Realm, nonce: d.Nonce, uri: d.URI, response: d.Response,
		algorithm: d.Algorithm, cnonce: d.Cnonce, qop: d.QOP, nc: d.Nc}, nil
}

func skipSpaces(s string) string {
	for s != "" && s[0] == ' ' {
		s = s[1:]
	}
	return s
}

// cutToken splits off a leading run of [A-Za-z0-9-], possibly empty.
func cutToken(s string) (tok, rest string) {
	i := 0
	for i < len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			break
		}
		i++
	}
	return s[:i], s[i:]
}

// cutQuoted splits off a leading quoted string, unescaped; ok is false
// when it does not end.
func cutQuoted(s string) (value, rest string, ok bool) {
	end := -1
	escaped := false
	for i := 1; i < len(s); i++ {
		switch {
		case escaped:
			escaped = false
		case s[i] == '\\':
			escaped = true
		case s[i] == '"':
			end = i
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		return "", "", false
	}
	value = s[1:end]
	if strings.IndexByte(value, '\\') >= 0 {
		var b strings.Builder
		for i := 0; i < len(value); i++ {
			if value[i] == '\\' {
				i++
			}
			b.WriteByte(value[i])
		}
		value = b.String()
	}
	return value, s[end+1:], true
}

// digestResponse is the expected response for qop=auth (RFC 2617 §3.2.2,
// RFC 8760): H(HA1:nonce:nc:cnonce:auth:H(method:uri)), lower-case hex,
// appended to dst; the nc is the one parsed, as eight hex digits (as
// digest.Digest formats it). The hash functions are called directly so
// that the buffers stay on the stack.
func digestResponse(dst []byte, alg, ha1, method string, c *credentials) []byte {
	buf := make([]byte, 0, 512)
	buf = append(buf, method...)
	buf = append(buf, ':')
	buf = append(buf, c.uri...)
	var ha2 [2 * sha256.Size]byte
	a2 := hashHexTo(ha2[:0], alg, buf)
	buf = append(buf[:0], ha1...)
	buf = append(buf, ':')
	buf = append(buf, c.nonce...)
	buf = append(buf, ':')
	var nc [8]byte
	hexa := strconv.AppendUint(nc[:0], uint64(uint32(c.nc)), 16)
	for range 8 - len(hexa) {
		buf = append(buf, '0')
	}
	buf = append(buf, hexa...)
	buf = append(buf, ':')
	buf = append(buf, c.cnonce...)
	buf = append(buf, ":auth:"...)
	buf = append(buf, a2...)
	return hashHexTo(dst, alg, buf)
}

func hashHexTo(dst []byte, alg string, data []byte) []byte {
	if alg == "SHA-256" {
		sum := sha256.Sum256(data)
		return hex.AppendEncode(dst, sum[:])
	}
	sum := md5.Sum(data)
	return hex.AppendEncode(dst, sum[:])
}

// challenge is a Digest challenge as digest.Challenge.String formats it
// (realm and nonce quoted, stale=true when stale, algorithm, qop="auth").
func challenge(realm, nonce, alg string, stale bool) string {
	b := make([]byte, 0, 64+len(realm)+len(nonce))
	b = append(b, digest.Prefix+"realm="...)
	b = strconv.AppendQuote(b, realm)
	b = append(b, ", nonce="...)
	b = strconv.AppendQuote(b, nonce)
	if stale {
		b = append(b, ", stale=true"...)
	}
	b = append(b, ", algorithm="...)
	b = append(b, alg...)
	b = append(b, `, qop="auth"`...)
	return string(b)
}
