package stun

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/stun/v3"
)

// FuzzHandle feeds the request handler arbitrary packets (seeded from
// testdata/fuzz/FuzzHandle). Whatever arrives: no panic; a reply only to
// a Binding request, at most maxReply bytes, from a socket that exists,
// echoing the transaction ID; an RFC 5389 reply decodes with pion and
// carries a valid FINGERPRINT; an RFC 3489 one never XOR-MAPPED-ADDRESS.
func FuzzHandle(f *testing.F) {
	f.Add(request(f, stun.Fingerprint), uint8(0))
	f.Add(request(f, ChangeRequest{ChangeIP: true, ChangePort: true}), uint8(3))
	f.Add(classicRequest(&ChangeRequest{ChangePort: true}), uint8(1))
	f.Add(request(f, stun.RawAttribute{Type: 0x0002, Value: []byte{0, 1, 0, 1, 1, 2, 3, 4}}), uint8(4))
	four, one := fourSockets(), oneSocket()
	const maxReply = 120
	f.Fuzz(func(t *testing.T, pkt []byte, sel uint8) {
		r := four
		if sel&8 != 0 {
			r = one
		}
		sock := int(sel&7) % numSockets
		if sock != sockTCP && !r.adv[sock].IsValid() {
			sock = sockA1P1
		}
		m := stun.New()
		out, v := r.handle(m, pkt, sock, tSrc)
		if out == nil {
			if v.out == answeredSuccess || v.out == answeredError {
				t.Fatalf("outcome %d without a reply", v.out)
			}
			return
		}
		if len(out) > maxReply {
			t.Fatalf("reply of %d bytes to %d", len(out), len(pkt))
		}
		if !r.adv[v.from].IsValid() || (sock == sockTCP && v.from != sockA1P1) {
			t.Fatalf("reply from socket %d that does not exist", v.from)
		}
		if binary.BigEndian.Uint16(pkt[0:2]) != stun.BindingRequest.Value() {
			t.Fatalf("answered a message of type %#04x", binary.BigEndian.Uint16(pkt[0:2]))
		}
		if !bytes.Equal(out[4:20], pkt[4:20]) {
			t.Fatal("transaction ID not echoed")
		}
		if v.classic {
			b := bytes.Clone(out)
			binary.BigEndian.PutUint32(b[4:8], magicCookie)
			out = b
		} else {
			// What handle accepted, pion accepts too.
			if err := stun.Decode(pkt, stun.New()); err != nil {
				t.Fatalf("answered a request pion cannot decode: %v", err)
			}
		}
		reply := stun.New()
		if err := stun.Decode(out, reply); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		if v.classic {
			if reply.Contains(stun.AttrXORMappedAddress) || reply.Contains(stun.AttrFingerprint) || reply.Contains(stun.AttrSoftware) {
				t.Fatal("RFC 3489 reply with RFC 5389 attributes")
			}
		} else if err := stun.Fingerprint.Check(reply); err != nil {
			t.Fatalf("reply FINGERPRINT: %v", err)
		}
		if v.out == answeredSuccess && getAddr(t, reply, stun.AttrMappedAddress) != tSrc {
			t.Fatal("wrong MAPPED-ADDRESS")
		}
	})
}
