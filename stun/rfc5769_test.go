package stun

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/pion/stun/v3"
)

// The four sample messages of RFC 5769, checked byte for byte: decoded,
// their FINGERPRINT and MESSAGE-INTEGRITY verified, and encoded again from
// their fields to the same bytes. The vectors pad with spaces (0x20), on
// purpose; the re-encoding copies their padding bytes.

type vector struct {
	Section          string `json:"rfc5769_section"`
	Class            string `json:"class"`
	Software         string `json:"software"`
	XORMappedAddress string `json:"xor_mapped_address"`
	ShortTermPass    string `json:"short_term_password"`
	Username         string `json:"username"`
	Password         string `json:"password"`
	Nonce            string `json:"nonce"`
	Realm            string `json:"realm"`
	Fingerprint      bool   `json:"fingerprint"`
}

func loadVectors(t *testing.T) (map[string]vector, map[string][]byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc5769/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]vector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	raw := map[string][]byte{}
	for name := range want {
		h, err := os.ReadFile("testdata/rfc5769/" + name)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := hex.DecodeString(strings.Join(strings.Fields(string(h)), ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		raw[name] = msg
	}
	if len(raw) != 4 {
		t.Fatalf("want the 4 vectors of RFC 5769, have %d", len(raw))
	}
	return want, raw
}

// addPadded is m.Add with the padding bytes of the vector (padding is
// arbitrary; RFC 5769 uses spaces in three vectors and zeros in one).
func addPadded(m *stun.Message, t stun.AttrType, v, vector []byte) {
	m.Add(t, v)
	for i := len(m.Raw) - (4-len(v)%4)%4; i < len(m.Raw); i++ {
		m.Raw[i] = vector[i]
	}
}

func TestRFC5769Vectors(t *testing.T) {
	want, raw := loadVectors(t)
	for name, w := range want {
		t.Run(w.Section+"_"+name, func(t *testing.T) {
			msg := raw[name]
			m := stun.New()
			if err := stun.Decode(msg, m); err != nil {
				t.Fatalf("decode: %v", err)
			}
			switch w.Class {
			case "request":
				if m.Type != stun.BindingRequest {
					t.Fatalf("type %v, want binding request", m.Type)
				}
			case "success response":
				if m.Type != stun.BindingSuccess {
					t.Fatalf("type %v, want binding success", m.Type)
				}
			}
			if w.Fingerprint {
				if err := stun.Fingerprint.Check(m); err != nil {
					t.Fatalf("FINGERPRINT: %v", err)
				}
			} else if m.Contains(stun.AttrFingerprint) {
				t.Fatal("unexpected FINGERPRINT")
			}
			var integrity stun.MessageIntegrity
			if w.ShortTermPass != "" {
				integrity = stun.NewShortTermIntegrity(w.ShortTermPass)
			} else {
				integrity = stun.NewLongTermIntegrity(w.Username, w.Realm, w.Password)
			}
			if err := integrity.Check(m); err != nil {
				t.Fatalf("MESSAGE-INTEGRITY: %v", err)
			}
			// A wrong password must fail: the check above is not vacuous.
			if err := stun.NewShortTermIntegrity("wrong").Check(m); err == nil {
				t.Fatal("MESSAGE-INTEGRITY accepted a wrong password")
			}
			var sw stun.Software
			if w.Software != "" {
				if err := sw.GetFrom(m); err != nil || sw.String() != w.Software {
					t.Fatalf("SOFTWARE %q (%v), want %q", sw, err, w.Software)
				}
			}
			var u stun.Username
			if w.Username != "" {
				if err := u.GetFrom(m); err != nil || u.String() != w.Username {
					t.Fatalf("USERNAME %q (%v), want %q", u, err, w.Username)
				}
			}
			var xa stun.XORMappedAddress
			if w.XORMappedAddress != "" {
				if err := xa.GetFrom(m); err != nil || xa.String() != w.XORMappedAddress {
					t.Fatalf("XOR-MAPPED-ADDRESS %s (%v), want %s", xa, err, w.XORMappedAddress)
				}
			}

			// Encode again from the decoded fields, in the vector's order.
			out := stun.New()
			out.Type = m.Type
			out.TransactionID = m.TransactionID
			out.WriteHeader()
			for _, a := range m.Attributes {
				switch a.Type {
				case stun.AttrMessageIntegrity:
					if err := integrity.AddTo(out); err != nil {
						t.Fatal(err)
					}
				case stun.AttrFingerprint:
					if err := stun.Fingerprint.AddTo(out); err != nil {
						t.Fatal(err)
					}
				case stun.AttrXORMappedAddress:
					// Through the responder's own encoder.
					ap := netip.MustParseAddrPort(xa.String())
					addXORAddr(out, ap)
				case stun.AttrSoftware:
					addPadded(out, a.Type, []byte(sw), msg)
				case stun.AttrUsername:
					addPadded(out, a.Type, []byte(u), msg)
				default:
					addPadded(out, a.Type, a.Value, msg)
				}
			}
			if !bytes.Equal(out.Raw, msg) {
				t.Fatalf("re-encoded differs:\n got %x\nwant %x", out.Raw, msg)
			}
		})
	}
}

// The responder's XOR-MAPPED-ADDRESS for the vectors' transaction ID and
// source is the vectors' attribute, byte for byte.
func TestHandleRFC5769MappedAddress(t *testing.T) {
	_, raw := loadVectors(t)
	r := newResponder([numUDP]netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:3478")}, "fsplane")
	for _, name := range []string{"response-ipv4.hex", "response-ipv6.hex"} {
		vec := stun.New()
		if err := stun.Decode(raw[name], vec); err != nil {
			t.Fatal(err)
		}
		var xa stun.XORMappedAddress
		if err := xa.GetFrom(vec); err != nil {
			t.Fatal(err)
		}
		ip, _ := netip.AddrFromSlice(xa.IP)
		src := netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port))
		req := stun.MustBuild(stun.NewTransactionIDSetter(vec.TransactionID), stun.BindingRequest, stun.Fingerprint)
		out, v := r.handle(stun.New(), req.Raw, sockA1P1, src)
		if v.out != answeredSuccess {
			t.Fatalf("%s: outcome %d", name, v.out)
		}
		got := stun.New()
		if err := stun.Decode(out, got); err != nil {
			t.Fatal(err)
		}
		gv, _ := got.Get(stun.AttrXORMappedAddress)
		wv, _ := vec.Get(stun.AttrXORMappedAddress)
		if !bytes.Equal(gv, wv) {
			t.Fatalf("%s: XOR-MAPPED-ADDRESS %x, want %x", name, gv, wv)
		}
	}
}
