package registrar

import (
	"testing"

	"github.com/icholy/digest"
)

// FuzzParseCredentials holds parseCredentials to digest.ParseCredentials:
// the same headers are refused, and the accepted ones give the same
// fields; and digestResponse to digest.Digest for qop=auth.
// Run longer with: go test -run '^$' -fuzz FuzzParseCredentials -fuzztime 60s ./registrar/
func FuzzParseCredentials(f *testing.F) {
	for _, s := range []string{
		`Digest username="1001", realm="example.com", nonce="abc", uri="sip:example.com", response="0123", algorithm=MD5, cnonce="c", qop=auth, nc=00000001`,
		`digest username="a\"b\\c",realm="r" ,  nonce = "n", nc=ff, qop="auth", algorithm=SHA-256, opaque="o", userhash=true`,
		`Digest username="x", username="y", nc=7fffffff`,
		`Digest nc=80000000`, `Digest nc=-1`, `Digest nc=`, `Digest nc=zz`, `Digest =x`, `Digest a=`, `Digest a`,
		`Digest a="unterminated`, `Digest a="x\`, `Digest a=b;c=d`, `Digest a=b c=d`, `Digest a=b,,c=d`, `Digest ,a=b`,
		`Digest a=b,`, "Digest a=\"\xff\"", `Digest realm="é"`, "Digest\ta=b", `Digest  `, `Digest`, `Basic YWxhZGRpbjpvcGVu`,
		"Digest a=b\t", `DIGEST username="u"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseCredentials(s)
		want, werr := digest.ParseCredentials(s)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%q: error %v, icholy/digest %v", s, err, werr)
		}
		if err != nil {
			return
		}
		w := credentials{username: want.Username, realm: want.Realm, nonce: want.Nonce, uri: want.URI, response: want.Response,
			algorithm: want.Algorithm, cnonce: want.Cnonce, qop: want.QOP, nc: want.Nc}
		if got != w {
			t.Fatalf("%q:\n got %+v\nwant %+v", s, got, w)
		}
		if got.nc <= 0 || got.cnonce == "" {
			return // refused before any hash (and digest.Digest would make up a cnonce)
		}
		for _, alg := range []string{"MD5", "SHA-256"} {
			ha1 := hashHex(alg, got.username+":"+got.realm+":pw")
			d, err := digest.Digest(&digest.Challenge{Realm: got.realm, Nonce: got.nonce, Algorithm: alg, QOP: []string{"auth"}},
				digest.Options{Method: "REGISTER", URI: got.uri, Username: got.username, A1: ha1, Cnonce: got.cnonce, Count: got.nc})
			if err != nil {
				t.Fatal(err)
			}
			if r := string(digestResponse(nil, alg, ha1, "REGISTER", &got)); r != d.Response {
				t.Fatalf("%q %s: response %s, icholy/digest %s", s, alg, r, d.Response)
			}
		}
	})
}

// challenge formats exactly as digest.Challenge.String, which clients
// (and digest.ParseChallenge) read.
func TestChallengeFormat(t *testing.T) {
	for _, tc := range []struct {
		realm, nonce, alg string
		stale             bool
	}{
		{"example.com", "AAAB-_x", "MD5", false},
		{"example.com", "n", "SHA-256", true},
		{`we"ird\realm`, "n", "MD5", false},
	} {
		want := (&digest.Challenge{Realm: tc.realm, Nonce: tc.nonce, Algorithm: tc.alg, QOP: []string{"auth"}, Stale: tc.stale}).String()
		if got := challenge(tc.realm, tc.nonce, tc.alg, tc.stale); got != want {
			t.Errorf("challenge %q\n want %q", got, want)
		}
	}
}
