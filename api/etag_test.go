package api

import (
	"strings"
	"testing"
)

func TestIfMatch(t *testing.T) {
	for _, tc := range []struct {
		vals    []string
		v       int64
		ok      bool
		wantErr string
	}{
		{nil, 0, false, ""},
		{[]string{`"3"`}, 3, true, ""},
		{[]string{` "12" `}, 12, true, ""},
		{[]string{"*"}, 0, false, ""},
		{[]string{`"1", "2"`}, 0, false, "one ETag"},
		{[]string{`W/"3"`}, 0, false, "strong ETag"},
		{[]string{`3`}, 0, false, "quoted ETag"},
		{[]string{`"x"`}, 0, false, "not an fsplane ETag"},
		{[]string{`"0"`}, 0, false, "not an fsplane ETag"},
	} {
		v, ok, err := ifMatch(tc.vals)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ifMatch(%q) err %v, want %q", tc.vals, err, tc.wantErr)
			}
			continue
		}
		if err != nil || v != tc.v || ok != tc.ok {
			t.Errorf("ifMatch(%q) = %d %v %v", tc.vals, v, ok, err)
		}
	}
}
