package names

import (
	"errors"
	"testing"
)

func TestGateway(t *testing.T) {
	for _, ok := range []string{"plusnet", "1und1", "einsundeins-ivr", "a.b_c-d", "0"} {
		if err := Gateway(ok); err != nil {
			t.Errorf("Gateway(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", ".x", "Plusnet", "a b", "a\nb", "a\r\napi status", "x;y",
		"<x>", "a&b", "$${x}", "a\"b", "a'b", "ü", string(make([]byte, 64))} {
		err := Gateway(bad)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Gateway(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	long := "a"
	for len(long) < 63 {
		long += "b"
	}
	if err := Gateway(long); err != nil {
		t.Errorf("63 characters must pass: %v", err)
	}
	if err := Gateway(long + "c"); err == nil {
		t.Error("64 characters must fail")
	}
}

func FuzzGateway(f *testing.F) {
	for _, s := range []string{"plusnet", "a\nb", "x y", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Gateway(s) != nil {
			return
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				t.Fatalf("accepted %q with %q", s, r)
			}
		}
	})
}
