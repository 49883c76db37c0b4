package auth

import (
	"regexp"
	"strings"
	"testing"
)

func TestNewTokenIsRandomAndWellFormed(t *testing.T) {
	re := regexp.MustCompile(`^fsp_[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 100 {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(tok) {
			t.Fatalf("token %q has the wrong form", tok)
		}
		if seen[tok] {
			t.Fatal("NewToken repeated itself")
		}
		seen[tok] = true
	}
}

func TestHashIsSHA256Hex(t *testing.T) {
	// sha256("abc") from FIPS 180-2.
	if got := Hash("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("Hash(abc) = %s", got)
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes(" sip:read, firewall:read,sip:read ")
	if err != nil || strings.Join(got, ",") != "sip:read,firewall:read" {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"", " , ", "sip:read,root", "SIP:READ"} {
		if _, err := ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) accepted", bad)
		}
	}
}

func TestAllows(t *testing.T) {
	if !Allows([]string{ScopeAdmin}, ScopeSIPSecrets) {
		t.Error("admin must imply sip:secrets")
	}
	if Allows([]string{ScopeSIPRead}, ScopeSIPWrite) || Allows([]string{ScopeSIPWrite}, ScopeSIPSecrets) || Allows(nil, ScopeSIPRead) {
		t.Error("a scope must not imply another")
	}
	if !Allows([]string{ScopeXMLCurl}, ScopeXMLCurl) {
		t.Error("xmlcurl scope")
	}
}
