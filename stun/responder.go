package stun

import (
	"encoding/binary"
	"net/netip"

	"github.com/pion/stun/v3"
)

// Socket indexes: bit 0 is the address (A1 or A2), bit 1 the port (P1 or
// P2), so a change of IP is i^1, of port i^2, of both i^3.
const (
	sockA1P1   = 0
	sockA2P1   = 1
	sockA1P2   = 2
	sockA2P2   = 3
	numUDP     = 4
	sockTCP    = 4 // metrics slot of TCP on A1:P1
	numSockets = 5
)

var socketNames = [numSockets]string{"A1:P1", "A2:P1", "A1:P2", "A2:P2", "A1:P1"}
var socketTransports = [numSockets]string{"udp", "udp", "udp", "udp", "tcp"}

const (
	magicCookie = 0x2112A442
	headerSize  = 20
	// maxUnknown bounds UNKNOWN-ATTRIBUTES: a request naming more still
	// gets 420, listing the first ones (the answer stays small).
	maxUnknown = 8
	// maxRequest is the largest request handled (a PADDING test sends
	// 1532 bytes, answered with 420); longer ones are dropped.
	maxRequest = 2048
)

// outcome is what handle did with a packet, for the metrics.
type outcome uint8

const (
	dropMalformed outcome = iota
	dropNotRequest
	dropMethod
	dropRateLimited
	dropSendError
	answeredSuccess
	answeredError
	numOutcomes
)

var dropReasons = [...]string{dropMalformed: "malformed", dropNotRequest: "not_request", dropMethod: "method", dropRateLimited: "rate_limited", dropSendError: "send_error"}

// verdict is handle's result besides the reply bytes.
type verdict struct {
	out     outcome
	classic bool           // an RFC 3489 request (no magic cookie)
	from    int            // socket the reply leaves from
	to      netip.AddrPort // where it goes: the source, or its RESPONSE-PORT
}

// responder turns one request into one reply; it owns no sockets and is
// safe for concurrent use (each caller brings its own Message).
type responder struct {
	// adv[i] is socket i's address as told to clients; invalid when the
	// socket does not exist.
	adv       [numUDP]netip.AddrPort
	secondary bool
	software  []byte
}

func newResponder(adv [numUDP]netip.AddrPort, software string) *responder {
	return &responder{adv: adv, secondary: adv[sockA2P2].IsValid(), software: []byte(software)}
}

// handle answers req, received on socket sock (sockTCP for TCP) from src.
// It encodes the reply into m and returns m.Raw, or nil for no reply.
func (r *responder) handle(m *stun.Message, req []byte, sock int, src netip.AddrPort) ([]byte, verdict) {
	tcp := sock == sockTCP
	if tcp {
		sock = sockA1P1
	}
	v := verdict{out: dropMalformed, from: sock, to: src}
	n := len(req)
	if n < headerSize || n > maxRequest || req[0]&0xC0 != 0 {
		return nil, v
	}
	if l := int(binary.BigEndian.Uint16(req[2:4])); l%4 != 0 || headerSize+l != n {
		return nil, v
	}
	typ := binary.BigEndian.Uint16(req[0:2])
	var mt stun.MessageType
	mt.ReadValue(typ)
	v.classic = binary.BigEndian.Uint32(req[4:8]) != magicCookie

	var (
		unknown    [maxUnknown]stun.AttrType
		nUnknown   int
		anyUnknown bool
		change     ChangeRequest
		port       uint16 // RESPONSE-PORT; 0 when absent
	)
	for off := headerSize; off < n; {
		if n-off < 4 {
			return nil, v
		}
		t := stun.AttrType(binary.BigEndian.Uint16(req[off:]))
		al := int(binary.BigEndian.Uint16(req[off+2:]))
		val := off + 4
		next := val + (al+3)&^3
		if next > n {
			return nil, v
		}
		switch t {
		case stun.AttrChangeRequest:
			if change.decode(req[val:val+al]) != nil {
				return nil, v
			}
		case stun.AttrResponsePort:
			// RFC 5780 §7.5: the answer goes to the source's address at
			// this port; never another address, so no reflection. Not an
			// RFC 3489 attribute: unknown there.
			if v.classic {
				anyUnknown = true
				nUnknown = appendUnknown(&unknown, nUnknown, t)
				break
			}
			if al != 2 && al != 4 {
				return nil, v
			}
			if port = binary.BigEndian.Uint16(req[val:]); port == 0 {
				return nil, v
			}
		case stun.AttrUsername, stun.AttrMessageIntegrity, stun.AttrMessageIntegritySHA256:
			// No credentials here: understood and ignored (RFC 8489 §9).
		case stun.AttrFingerprint:
			// Last, and right: a wrong one means the packet is not STUN.
			if v.classic || next != n || al != 4 ||
				binary.BigEndian.Uint32(req[val:]) != stun.FingerprintValue(req[:off]) {
				return nil, v
			}
		default:
			if t.Required() {
				anyUnknown = true
				nUnknown = appendUnknown(&unknown, nUnknown, t)
			}
		}
		off = next
	}
	if mt.Class != stun.ClassRequest {
		v.out = dropNotRequest
		return nil, v
	}
	if mt.Method != stun.MethodBinding {
		v.out = dropMethod
		return nil, v
	}

	if !anyUnknown && port != 0 {
		if tcp {
			anyUnknown = true
			unknown[0] = stun.AttrResponsePort
			nUnknown = 1
		} else {
			v.to = netip.AddrPortFrom(src.Addr(), port)
		}
	}
	if !anyUnknown && (change.ChangeIP || change.ChangePort) {
		to := sock
		if change.ChangeIP {
			to ^= 1
		}
		if change.ChangePort {
			to ^= 2
		}
		if tcp || !r.adv[to].IsValid() {
			// Never answer from a socket the client did not ask for.
			anyUnknown = true
			unknown[0] = stun.AttrChangeRequest
			nUnknown = 1
			v.to = src
		} else {
			v.from = to
		}
	}

	m.Reset()
	copy(m.TransactionID[:], req[8:headerSize])
	if anyUnknown {
		v.out = answeredError
		v.from = sock
		v.to = src
		m.Type = stun.BindingError
		m.WriteHeader()
		addErrorCode(m, stun.CodeUnknownAttribute, "Unknown Attribute")
		addUnknown(m, unknown[:nUnknown])
	} else {
		v.out = answeredSuccess
		m.Type = stun.BindingSuccess
		m.WriteHeader()
		mapped := netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		origin := r.adv[v.from]
		if v.classic {
			addAddr(m, stun.AttrMappedAddress, mapped)
			if origin.Addr().IsValid() && !origin.Addr().IsUnspecified() {
				addAddr(m, stun.AttrSourceAddress, origin)
			}
			if r.secondary {
				addAddr(m, stun.AttrChangedAddress, r.adv[sock^3])
			}
		} else {
			addXORAddr(m, mapped)
			addAddr(m, stun.AttrMappedAddress, mapped)
			if r.secondary {
				addAddr(m, stun.AttrResponseOrigin, origin)
				addAddr(m, stun.AttrOtherAddress, r.adv[sock^3])
			}
		}
	}
	if v.classic {
		// The 128-bit RFC 3489 transaction ID, echoed whole.
		copy(m.Raw[4:8], req[4:8])
		return m.Raw, v
	}
	if len(r.software) > 0 {
		m.Add(stun.AttrSoftware, r.software)
	}
	_ = stun.Fingerprint.AddTo(m)
	return m.Raw, v
}

func appendUnknown(u *[maxUnknown]stun.AttrType, n int, t stun.AttrType) int {
	if n < maxUnknown {
		u[n] = t
		n++
	}
	return n
}

// addAddr adds a MAPPED-ADDRESS-style attribute (RFC 8489 §14.1) without
// allocating.
func addAddr(m *stun.Message, t stun.AttrType, ap netip.AddrPort) {
	var b [20]byte
	n := putAddr(b[:], ap)
	m.Add(t, b[:n])
}

func putAddr(b []byte, ap netip.AddrPort) int {
	a := ap.Addr().Unmap()
	binary.BigEndian.PutUint16(b[2:4], ap.Port())
	if a.Is4() {
		b[1] = 0x01
		ip := a.As4()
		copy(b[4:], ip[:])
		return 8
	}
	b[1] = 0x02
	ip := a.As16()
	copy(b[4:], ip[:])
	return 20
}

// addXORAddr adds XOR-MAPPED-ADDRESS (RFC 8489 §14.2) without allocating.
func addXORAddr(m *stun.Message, ap netip.AddrPort) {
	var b [20]byte
	n := putAddr(b[:], ap)
	var key [16]byte
	binary.BigEndian.PutUint32(key[0:4], magicCookie)
	copy(key[4:], m.TransactionID[:])
	b[2] ^= key[0]
	b[3] ^= key[1]
	for i := 4; i < n; i++ {
		b[i] ^= key[i-4]
	}
	m.Add(stun.AttrXORMappedAddress, b[:n])
}

// addErrorCode adds ERROR-CODE (RFC 8489 §14.8) without allocating.
func addErrorCode(m *stun.Message, code stun.ErrorCode, reason string) {
	var b [64]byte
	b[2] = byte(code / 100)
	b[3] = byte(code % 100)
	n := 4 + copy(b[4:], reason)
	m.Add(stun.AttrErrorCode, b[:n])
}

// addUnknown adds UNKNOWN-ATTRIBUTES (RFC 8489 §14.9) without allocating.
func addUnknown(m *stun.Message, ts []stun.AttrType) {
	var b [2 * maxUnknown]byte
	for i, t := range ts {
		binary.BigEndian.PutUint16(b[2*i:], uint16(t))
	}
	m.Add(stun.AttrUnknownAttributes, b[:2*len(ts)])
}
