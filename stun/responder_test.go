package stun

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

var (
	tA1P1 = netip.MustParseAddrPort("192.0.2.1:3478")
	tA2P1 = netip.MustParseAddrPort("192.0.2.2:3478")
	tA1P2 = netip.MustParseAddrPort("192.0.2.1:3479")
	tA2P2 = netip.MustParseAddrPort("192.0.2.2:3479")
	tSrc  = netip.MustParseAddrPort("198.51.100.7:40000")
)

func fourSockets() *responder {
	return newResponder([numUDP]netip.AddrPort{tA1P1, tA2P1, tA1P2, tA2P2}, "fsplane test")
}

func oneSocket() *responder {
	return newResponder([numUDP]netip.AddrPort{tA1P1}, "fsplane test")
}

// request builds an RFC 5389 Binding request with setters.
func request(t testing.TB, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// classicRequest is an RFC 3489 Binding request: a 128-bit transaction ID
// in place of the cookie, and optionally CHANGE-REQUEST.
func classicRequest(change *ChangeRequest) []byte {
	b := []byte{0, 1, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if change != nil {
		var f byte
		if change.ChangeIP {
			f |= changeIPFlag
		}
		if change.ChangePort {
			f |= changePortFlag
		}
		b = append(b, 0, 3, 0, 4, 0, 0, 0, f)
		binary.BigEndian.PutUint16(b[2:4], 8)
	}
	return b
}

// decodeReply decodes an RFC 5389 reply and checks its FINGERPRINT.
func decodeReply(t *testing.T, out []byte) *stun.Message {
	t.Helper()
	m := stun.New()
	if err := stun.Decode(out, m); err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Fatalf("reply FINGERPRINT: %v", err)
	}
	return m
}

func getAddr(t *testing.T, m *stun.Message, at stun.AttrType) netip.AddrPort {
	t.Helper()
	var a stun.MappedAddress
	if err := a.GetFromAs(m, at); err != nil {
		t.Fatalf("%v: %v", at, err)
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

func attrTypes(m *stun.Message) []stun.AttrType {
	var ts []stun.AttrType
	for _, a := range m.Attributes {
		ts = append(ts, a.Type)
	}
	return ts
}

func TestHandleRFC5389(t *testing.T) {
	for _, tc := range []struct {
		name       string
		r          *responder
		sock       int
		change     *ChangeRequest
		wantFrom   int
		wantOther  netip.AddrPort // zero: no OTHER-ADDRESS nor RESPONSE-ORIGIN
		wantOrigin netip.AddrPort
	}{
		{"four sockets", fourSockets(), sockA1P1, nil, sockA1P1, tA2P2, tA1P1},
		{"no change asked", fourSockets(), sockA1P1, &ChangeRequest{}, sockA1P1, tA2P2, tA1P1},
		{"change port", fourSockets(), sockA1P1, &ChangeRequest{ChangePort: true}, sockA1P2, tA2P2, tA1P2},
		{"change IP", fourSockets(), sockA1P1, &ChangeRequest{ChangeIP: true}, sockA2P1, tA2P2, tA2P1},
		{"change both", fourSockets(), sockA1P1, &ChangeRequest{ChangeIP: true, ChangePort: true}, sockA2P2, tA2P2, tA2P2},
		{"to A2:P1", fourSockets(), sockA2P1, nil, sockA2P1, tA1P2, tA2P1},
		{"to A2:P2 change both", fourSockets(), sockA2P2, &ChangeRequest{ChangeIP: true, ChangePort: true}, sockA1P1, tA1P1, tA1P1},
		{"to A1:P2 change IP", fourSockets(), sockA1P2, &ChangeRequest{ChangeIP: true}, sockA2P2, tA2P1, tA2P2},
		{"one socket", oneSocket(), sockA1P1, nil, sockA1P1, netip.AddrPort{}, netip.AddrPort{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var setters []stun.Setter
			if tc.change != nil {
				setters = append(setters, *tc.change)
			}
			req := request(t, append(setters, stun.Fingerprint)...)
			out, v := tc.r.handle(stun.New(), req, tc.sock, tSrc)
			if v.out != answeredSuccess || v.classic {
				t.Fatalf("outcome %d classic %v", v.out, v.classic)
			}
			if v.from != tc.wantFrom {
				t.Fatalf("answered from socket %s, want %s", socketNames[v.from], socketNames[tc.wantFrom])
			}
			m := decodeReply(t, out)
			if m.Type != stun.BindingSuccess || !bytes.Equal(m.TransactionID[:], req[8:20]) {
				t.Fatalf("type %v tid %x", m.Type, m.TransactionID)
			}
			var xa stun.XORMappedAddress
			if err := xa.GetFrom(m); err != nil || xa.String() != tSrc.String() {
				t.Fatalf("XOR-MAPPED-ADDRESS %v (%v)", xa, err)
			}
			if got := getAddr(t, m, stun.AttrMappedAddress); got != tSrc {
				t.Fatalf("MAPPED-ADDRESS %v", got)
			}
			var sw stun.Software
			if err := sw.GetFrom(m); err != nil || sw.String() != "fsplane test" {
				t.Fatalf("SOFTWARE %q (%v)", sw, err)
			}
			if !tc.wantOther.IsValid() {
				if m.Contains(stun.AttrOtherAddress) || m.Contains(stun.AttrResponseOrigin) || m.Contains(stun.AttrChangedAddress) {
					t.Fatalf("one address only, yet %v", attrTypes(m))
				}
				return
			}
			if got := getAddr(t, m, stun.AttrOtherAddress); got != tc.wantOther {
				t.Fatalf("OTHER-ADDRESS %v, want %v", got, tc.wantOther)
			}
			if got := getAddr(t, m, stun.AttrResponseOrigin); got != tc.wantOrigin {
				t.Fatalf("RESPONSE-ORIGIN %v, want %v", got, tc.wantOrigin)
			}
		})
	}
}

func TestHandleIPv6Source(t *testing.T) {
	src := netip.MustParseAddrPort("[2001:db8::7]:5060")
	r := newResponder([numUDP]netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:3478")}, "x")
	out, v := r.handle(stun.New(), request(t), sockA1P1, src)
	if v.out != answeredSuccess {
		t.Fatalf("outcome %d", v.out)
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(decodeReply(t, out)); err != nil || xa.String() != src.String() {
		t.Fatalf("XOR-MAPPED-ADDRESS %v (%v)", xa, err)
	}
	// A dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d; they are
	// told their IPv4 address.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(tSrc.Addr().As16()), tSrc.Port())
	out, _ = r.handle(stun.New(), request(t), sockA1P1, mapped)
	if err := xa.GetFrom(decodeReply(t, out)); err != nil || xa.String() != tSrc.String() {
		t.Fatalf("XOR-MAPPED-ADDRESS for a v4-mapped source %v (%v)", xa, err)
	}
}

func TestHandleRFC3489(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        *responder
		change   *ChangeRequest
		wantFrom int
		want     []stun.AttrType
	}{
		{"four sockets", fourSockets(), &ChangeRequest{}, sockA1P1, []stun.AttrType{stun.AttrMappedAddress, stun.AttrSourceAddress, stun.AttrChangedAddress}},
		{"without CHANGE-REQUEST", fourSockets(), nil, sockA1P1, []stun.AttrType{stun.AttrMappedAddress, stun.AttrSourceAddress, stun.AttrChangedAddress}},
		{"change both", fourSockets(), &ChangeRequest{ChangeIP: true, ChangePort: true}, sockA2P2, []stun.AttrType{stun.AttrMappedAddress, stun.AttrSourceAddress, stun.AttrChangedAddress}},
		{"change port", fourSockets(), &ChangeRequest{ChangePort: true}, sockA1P2, []stun.AttrType{stun.AttrMappedAddress, stun.AttrSourceAddress, stun.AttrChangedAddress}},
		{"one socket", oneSocket(), nil, sockA1P1, []stun.AttrType{stun.AttrMappedAddress, stun.AttrSourceAddress}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := classicRequest(tc.change)
			out, v := tc.r.handle(stun.New(), req, sockA1P1, tSrc)
			if v.out != answeredSuccess || !v.classic || v.from != tc.wantFrom {
				t.Fatalf("outcome %d classic %v from %d", v.out, v.classic, v.from)
			}
			if !bytes.Equal(out[4:20], req[4:20]) {
				t.Fatalf("transaction ID %x, want %x", out[4:20], req[4:20])
			}
			// Decode with the cookie patched in: the layout is the same.
			patched := slices.Clone(out)
			binary.BigEndian.PutUint32(patched[4:8], magicCookie)
			m := stun.New()
			if err := stun.Decode(patched, m); err != nil {
				t.Fatal(err)
			}
			if m.Type != stun.BindingSuccess {
				t.Fatalf("type %v", m.Type)
			}
			// Nothing a classic client does not know: no XOR-MAPPED-ADDRESS,
			// no SOFTWARE, no FINGERPRINT.
			if got := attrTypes(m); !slices.Equal(got, tc.want) {
				t.Fatalf("attributes %v, want %v", got, tc.want)
			}
			if got := getAddr(t, m, stun.AttrMappedAddress); got != tSrc {
				t.Fatalf("MAPPED-ADDRESS %v", got)
			}
			if got := getAddr(t, m, stun.AttrSourceAddress); got != tc.r.adv[tc.wantFrom] {
				t.Fatalf("SOURCE-ADDRESS %v, want %v", got, tc.r.adv[tc.wantFrom])
			}
			if tc.r.secondary {
				if got := getAddr(t, m, stun.AttrChangedAddress); got != tA2P2 {
					t.Fatalf("CHANGED-ADDRESS %v, want A2:P2 %v", got, tA2P2)
				}
			}
		})
	}
}

// errorReply checks a 420 naming want, from the receiving socket.
func errorReply(t *testing.T, out []byte, v verdict, sock int, want ...stun.AttrType) {
	t.Helper()
	if v.out != answeredError || v.from != sock {
		t.Fatalf("outcome %d from %d, want a 420 from %d", v.out, v.from, sock)
	}
	if v.classic {
		out = slices.Clone(out)
		binary.BigEndian.PutUint32(out[4:8], magicCookie)
	}
	m := stun.New()
	if err := stun.Decode(out, m); err != nil {
		t.Fatal(err)
	}
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil || ec.Code != stun.CodeUnknownAttribute || m.Type != stun.BindingError {
		t.Fatalf("type %v ERROR-CODE %v (%v)", m.Type, ec, err)
	}
	var ua stun.UnknownAttributes
	if err := ua.GetFrom(m); err != nil || !slices.Equal([]stun.AttrType(ua), want) {
		t.Fatalf("UNKNOWN-ATTRIBUTES %v (%v), want %v", ua, err, want)
	}
	if m.Contains(stun.AttrXORMappedAddress) || m.Contains(stun.AttrMappedAddress) {
		t.Fatal("an error response carries a mapped address")
	}
}

func TestHandleChangeNotPossible(t *testing.T) {
	one := oneSocket()
	for _, c := range []ChangeRequest{{ChangeIP: true}, {ChangePort: true}, {ChangeIP: true, ChangePort: true}} {
		out, v := one.handle(stun.New(), request(t, c, stun.Fingerprint), sockA1P1, tSrc)
		errorReply(t, out, v, sockA1P1, stun.AttrChangeRequest)
		decodeReply(t, out)
		out, v = one.handle(stun.New(), classicRequest(&c), sockA1P1, tSrc)
		errorReply(t, out, v, sockA1P1, stun.AttrChangeRequest)
		// Over TCP no other socket can answer, even with four.
		out, v = fourSockets().handle(stun.New(), request(t, c), sockTCP, tSrc)
		errorReply(t, out, v, sockA1P1, stun.AttrChangeRequest)
	}
	// TCP without a change is answered.
	if _, v := fourSockets().handle(stun.New(), request(t, ChangeRequest{}), sockTCP, tSrc); v.out != answeredSuccess {
		t.Fatalf("TCP binding: outcome %d", v.out)
	}
}

func TestHandleUnknownAttributes(t *testing.T) {
	r := fourSockets()
	responseAddress := stun.RawAttribute{Type: 0x0002, Value: []byte{0, 1, 0x13, 0x88, 203, 0, 113, 9}}
	odd := stun.RawAttribute{Type: 0x7777, Value: []byte{1}}
	optional := stun.RawAttribute{Type: 0x8888, Value: []byte{1, 2, 3, 4}}
	padding := stun.RawAttribute{Type: stun.AttrPadding, Value: make([]byte, 512)}

	out, v := r.handle(stun.New(), request(t, responseAddress, odd, optional, stun.Fingerprint), sockA1P1, tSrc)
	errorReply(t, out, v, sockA1P1, 0x0002, 0x7777)
	decodeReply(t, out)
	// Even with a change asked: the error comes from the socket asked.
	out, v = r.handle(stun.New(), request(t, ChangeRequest{ChangeIP: true}, odd), sockA1P1, tSrc)
	errorReply(t, out, v, sockA1P1, 0x7777)
	// PADDING would make the answer as large as the attacker likes.
	out, v = r.handle(stun.New(), request(t, padding), sockA1P1, tSrc)
	errorReply(t, out, v, sockA1P1, stun.AttrPadding)
	if len(out) > 100 {
		t.Fatalf("420 of %d bytes", len(out))
	}
	// Comprehension-optional attributes are ignored; USERNAME and
	// MESSAGE-INTEGRITY too (no credentials here).
	if _, v := r.handle(stun.New(), request(t, optional, stun.NewUsername("u"), stun.NewShortTermIntegrity("p"), stun.Fingerprint), sockA1P1, tSrc); v.out != answeredSuccess {
		t.Fatalf("outcome %d", v.out)
	}
	// Ten unknown attributes: 420 names the first maxUnknown.
	var many []stun.Setter
	var want []stun.AttrType
	for i := range 10 {
		a := stun.AttrType(0x7000 + i)
		many = append(many, stun.RawAttribute{Type: a})
		if i < maxUnknown {
			want = append(want, a)
		}
	}
	out, v = r.handle(stun.New(), request(t, many...), sockA1P1, tSrc)
	errorReply(t, out, v, sockA1P1, want...)
}

func TestHandleDrops(t *testing.T) {
	r := fourSockets()
	good := request(t, stun.Fingerprint)
	badFP := slices.Clone(good)
	badFP[len(badFP)-1] ^= 1
	fpNotLast := request(t, stun.Fingerprint, stun.NewUsername("x"))
	trailing := append(slices.Clone(request(t)), 0, 0, 0, 0)
	overflow := request(t, stun.NewUsername("abcd"))
	binary.BigEndian.PutUint16(overflow[22:24], 200)
	badChange := request(t, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 4}})
	indication := request(t, stun.NewType(stun.MethodBinding, stun.ClassIndication))
	response := request(t, stun.BindingSuccess)
	allocate := request(t, stun.NewType(stun.MethodAllocate, stun.ClassRequest))
	classicFP := classicRequest(nil)
	classicFP = append(classicFP, 0x80, 0x28, 0, 4, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(classicFP[2:4], 8)
	for _, tc := range []struct {
		name string
		pkt  []byte
		want outcome
	}{
		{"empty", nil, dropMalformed},
		{"short", good[:19], dropMalformed},
		{"top bits", append([]byte{0xc0}, good[1:]...), dropMalformed},
		{"length not a multiple of 4", append(slices.Clone(good[:2]), append([]byte{0, 3}, good[4:]...)...), dropMalformed},
		{"truncated", good[:len(good)-4], dropMalformed},
		{"trailing bytes", trailing, dropMalformed},
		{"attribute past the end", overflow, dropMalformed},
		{"wrong FINGERPRINT", badFP, dropMalformed},
		{"FINGERPRINT not last", fpNotLast, dropMalformed},
		{"FINGERPRINT in RFC 3489", classicFP, dropMalformed},
		{"CHANGE-REQUEST of 3 bytes", badChange, dropMalformed},
		{"too long", make([]byte, maxRequest+4), dropMalformed},
		{"indication", indication, dropNotRequest},
		{"response", response, dropNotRequest},
		{"allocate", allocate, dropMethod},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, v := r.handle(stun.New(), tc.pkt, sockA1P1, tSrc)
			if out != nil || v.out != tc.want {
				t.Fatalf("reply of %d bytes, outcome %d; want none, %d", len(out), v.out, tc.want)
			}
		})
	}
	if _, v := r.handle(stun.New(), good, sockA1P1, tSrc); v.out != answeredSuccess {
		t.Fatal("the unmodified request is not answered")
	}
}

// Answering allocates nothing, for every kind of answer.
func TestHandleAllocs(t *testing.T) {
	r := fourSockets()
	m := stun.New()
	for name, req := range map[string][]byte{
		"rfc5389":     request(t, stun.NewSoftware("client"), stun.Fingerprint),
		"change both": request(t, ChangeRequest{ChangeIP: true, ChangePort: true}, stun.Fingerprint),
		"rfc3489":     classicRequest(&ChangeRequest{ChangePort: true}),
		"420":         request(t, stun.RawAttribute{Type: 0x7777}, stun.Fingerprint),
		"malformed":   request(t)[:19],
		"ipv6":        request(t),
	} {
		src := tSrc
		if name == "ipv6" {
			src = netip.MustParseAddrPort("[2001:db8::7]:5060")
		}
		r.handle(m, req, sockA1P1, src) // grow m once
		if n := testing.AllocsPerRun(1000, func() { r.handle(m, req, sockA1P1, src) }); n != 0 {
			t.Errorf("%s: %v allocations per request", name, n)
		}
	}
	met := newMetrics(nil)
	lim := newLimiter(1e9, time.Now)
	if n := testing.AllocsPerRun(1000, func() {
		lim.allow(tSrc.Addr())
		met.count(sockA1P1, verdict{out: answeredSuccess})
	}); n != 0 {
		t.Errorf("rate limiter and metrics: %v allocations per request", n)
	}
}

func BenchmarkHandle(b *testing.B) {
	r := fourSockets()
	m := stun.New()
	req := request(b, stun.Fingerprint)
	b.ReportAllocs()
	for b.Loop() {
		r.handle(m, req, sockA1P1, tSrc)
	}
}

type responsePort uint16

func (p responsePort) AddTo(m *stun.Message) error {
	m.Add(stun.AttrResponsePort, []byte{byte(p >> 8), byte(p), 0, 0})
	return nil
}

// RESPONSE-PORT changes only the port the answer goes to.
func TestHandleResponsePort(t *testing.T) {
	r := fourSockets()
	out, v := r.handle(stun.New(), request(t, responsePort(5000), ChangeRequest{ChangeIP: true}, stun.Fingerprint), sockA1P1, tSrc)
	if v.out != answeredSuccess || v.from != sockA2P1 || v.to != netip.AddrPortFrom(tSrc.Addr(), 5000) {
		t.Fatalf("outcome %d from %d to %v", v.out, v.from, v.to)
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(decodeReply(t, out)); err != nil || xa.String() != tSrc.String() {
		t.Fatalf("XOR-MAPPED-ADDRESS %v (%v): the source, not the response port", xa, err)
	}
	out, v = r.handle(stun.New(), request(t, responsePort(5000)), sockTCP, tSrc)
	errorReply(t, out, v, sockA1P1, stun.AttrResponsePort)
	if v.to != tSrc {
		t.Fatalf("TCP 420 to %v", v.to)
	}
	// Without the cookie it is not an RFC 3489 attribute.
	classic := classicRequest(nil)
	classic = append(classic, 0, 0x27, 0, 4, 0x13, 0x88, 0, 0)
	binary.BigEndian.PutUint16(classic[2:4], 8)
	out, v = r.handle(stun.New(), classic, sockA1P1, tSrc)
	errorReply(t, out, v, sockA1P1, stun.AttrResponsePort)
	if v.to != tSrc {
		t.Fatalf("RFC 3489 420 to %v", v.to)
	}
	if _, v := r.handle(stun.New(), request(t, responsePort(0)), sockA1P1, tSrc); v.out != dropMalformed {
		t.Fatalf("RESPONSE-PORT 0: outcome %d", v.out)
	}
}
