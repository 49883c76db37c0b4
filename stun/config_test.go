package stun

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ap := netip.MustParseAddrPort
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		name    string
		c       Config
		wantErr error
		msg     string
	}{
		{"primary only", Config{Primary: ap("127.0.0.1:3478")}, nil, ""},
		{"four addresses", Config{Primary: ap("127.0.0.1:3478"), Secondary: ap("127.0.0.2:3479")}, nil, ""},
		{"IPv6", Config{Primary: ap("[::1]:3478")}, nil, ""},
		{"dual stack alone", Config{Primary: ap("[::]:3478")}, nil, ""},
		{"advertised", Config{Primary: ap("10.0.0.1:3478"), Secondary: ap("10.0.0.2:3479"), PrimaryAdvertised: ip("203.0.113.1"), SecondaryAdvertised: ip("203.0.113.2")}, nil, ""},
		{"no primary", Config{}, ErrNoPrimary, ""},
		{"secondary equals primary", Config{Primary: ap("127.0.0.1:3478"), Secondary: ap("127.0.0.1:3478")}, ErrSecondary, "must differ from the primary"},
		{"same address", Config{Primary: ap("127.0.0.1:3478"), Secondary: ap("127.0.0.1:3479")}, ErrSecondary, "primary's address"},
		{"same port", Config{Primary: ap("127.0.0.1:3478"), Secondary: ap("127.0.0.2:3478")}, ErrSecondary, "primary's port"},
		{"families", Config{Primary: ap("127.0.0.1:3478"), Secondary: ap("[::1]:3479")}, ErrSecondary, "family"},
		{"unspecified with secondary", Config{Primary: ap("0.0.0.0:3478"), Secondary: ap("127.0.0.2:3479")}, ErrSecondary, "specific"},
		{"advertised one", Config{Primary: ap("10.0.0.1:3478"), Secondary: ap("10.0.0.2:3479"), PrimaryAdvertised: ip("203.0.113.1")}, ErrAdvertised, "or neither"},
		{"advertised family", Config{Primary: ap("10.0.0.1:3478"), PrimaryAdvertised: ip("2001:db8::1")}, ErrAdvertised, "family"},
		{"advertised secondary alone", Config{Primary: ap("10.0.0.1:3478"), SecondaryAdvertised: ip("203.0.113.2")}, ErrAdvertised, "without a secondary"},
		{"advertised twice the same", Config{Primary: ap("10.0.0.1:3478"), Secondary: ap("10.0.0.2:3479"), PrimaryAdvertised: ip("203.0.113.1"), SecondaryAdvertised: ip("203.0.113.1")}, ErrAdvertised, "both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %v mentioning %q", err, tc.wantErr, tc.msg)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(5, func() time.Time { return now }) // burst 10
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	for i := range 10 {
		if !l.allow(a) {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	if l.allow(a) {
		t.Fatal("11th request within the burst allowed")
	}
	if !l.allow(b) {
		t.Fatal("another source is limited by the first")
	}
	now = now.Add(200 * time.Millisecond) // one token at 5/s
	if !l.allow(a) || l.allow(a) {
		t.Fatal("after 200ms exactly one more request must pass")
	}
	now = now.Add(time.Hour)
	n := 0
	for l.allow(a) {
		n++
	}
	if n != 10 {
		t.Fatalf("after a long pause %d requests passed, want the burst of 10", n)
	}
}
