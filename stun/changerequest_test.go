package stun

import (
	"testing"

	"github.com/pion/stun/v3"
)

func TestChangeRequestSetterGetter(t *testing.T) {
	for _, c := range []ChangeRequest{{}, {ChangeIP: true}, {ChangePort: true}, {ChangeIP: true, ChangePort: true}} {
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest, c)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := m.Get(stun.AttrChangeRequest)
		want := byte(0)
		if c.ChangeIP {
			want |= 0x04
		}
		if c.ChangePort {
			want |= 0x02
		}
		if len(v) != 4 || v[0] != 0 || v[1] != 0 || v[2] != 0 || v[3] != want {
			t.Fatalf("%+v encoded as %x", c, v)
		}
		decoded := stun.New()
		if err := stun.Decode(m.Raw, decoded); err != nil {
			t.Fatal(err)
		}
		var got ChangeRequest
		if err := got.GetFrom(decoded); err != nil || got != c {
			t.Fatalf("%+v decoded as %+v (%v)", c, got, err)
		}
	}
	var got ChangeRequest
	if err := got.GetFrom(stun.MustBuild(stun.TransactionID, stun.BindingRequest)); err == nil {
		t.Fatal("GetFrom without the attribute succeeded")
	}
	bad := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 0, 6, 0}})
	if err := got.GetFrom(bad); err == nil {
		t.Fatal("GetFrom accepted a 5-byte CHANGE-REQUEST")
	}
}
