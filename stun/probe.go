package stun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/pion/stun/v3"
)

// NATType is the verdict of RFC 3489 §10.1, as fsplane reports it.
type NATType string

// The eight NAT types (JSON values of nat_type).
const (
	NATOpen                 NATType = "open"
	NATFullCone             NATType = "full-cone"
	NATRestrictedCone       NATType = "restricted-cone"
	NATPortRestrictedCone   NATType = "port-restricted-cone"
	NATSymmetric            NATType = "symmetric"
	NATSymmetricUDPFirewall NATType = "symmetric-udp-firewall"
	NATBlocked              NATType = "blocked"
	NATUnknown              NATType = "unknown"
)

// Title is the type as an administrator reads it.
func (t NATType) Title() string {
	switch t {
	case NATOpen:
		return "Open Internet"
	case NATFullCone:
		return "Full Cone"
	case NATRestrictedCone:
		return "Restricted Cone"
	case NATPortRestrictedCone:
		return "Port Restricted Cone"
	case NATSymmetric:
		return "Symmetric NAT"
	case NATSymmetricUDPFirewall:
		return "Symmetric UDP Firewall"
	case NATBlocked:
		return "Firewall blocking UDP"
	}
	return "Unknown"
}

// Behavior is an RFC 5780 mapping or filtering behaviour.
type Behavior string

// RFC 5780 §4.3 and §4.4 behaviours.
const (
	EndpointIndependent     Behavior = "endpoint-independent"
	AddressDependent        Behavior = "address-dependent"
	AddressAndPortDependent Behavior = "address-and-port-dependent"
	BehaviorUnknown         Behavior = "unknown"
)

// ProbeResult is what Probe found; its JSON is `fsplane stun probe
// --json`'s and GET /api/v1/stun/probe's.
type ProbeResult struct {
	NATType       NATType  `json:"nat_type"`
	Title         string   `json:"nat_type_title"`
	PublicAddress string   `json:"public_address,omitempty"` // host:port as the server saw us
	LocalAddress  string   `json:"local_address"`
	Mapping       Behavior `json:"mapping"`
	Filtering     Behavior `json:"filtering"`
	Server        string   `json:"server"`
	OtherAddress  string   `json:"other_address,omitempty"` // the server's OTHER-ADDRESS or CHANGED-ADDRESS
	Detail        string   `json:"detail,omitempty"`        // why the type is unknown
}

// ProbeOptions configure Probe.
type ProbeOptions struct {
	// Server is the STUN server, host:port (its primary address).
	Server string
	// Conn, when set, is the socket to probe from (it is not closed);
	// otherwise one is bound on the address the route to the server
	// leaves from.
	Conn *net.UDPConn
	// Timeout bounds each test; a test without an answer by then counts
	// as unanswered (default 3s). Requests are retransmitted after 100ms,
	// doubling up to 800ms (RFC 8489 §6.2.1, shortened).
	Timeout time.Duration
}

// Probe runs the RFC 3489 §10.1 test sequence with the RFC 5780 mapping
// and filtering tests. Errors are for what prevents a probe at all (bad
// server name, no socket); an unanswering server is a result (blocked).
//
// The order matters: the filtering tests (answers from the other address
// and port) run before anything is sent to the other address, which would
// open the NAT to it.
func Probe(ctx context.Context, o ProbeOptions) (ProbeResult, error) {
	res, err := probe(ctx, o)
	res.Title = res.NATType.Title()
	return res, err
}

func probe(ctx context.Context, o ProbeOptions) (ProbeResult, error) {
	res := ProbeResult{NATType: NATUnknown, Mapping: BehaviorUnknown, Filtering: BehaviorUnknown, Server: o.Server}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	ua, err := net.ResolveUDPAddr("udp", o.Server)
	if err != nil {
		return res, fmt.Errorf("--server %q: %w", o.Server, err)
	}
	server := netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port())
	c := o.Conn
	if c == nil {
		if c, err = bindToward(server); err != nil {
			return res, err
		}
		defer c.Close()
	}
	local, err := localAddr(c, server)
	if err != nil {
		return res, err
	}
	res.LocalAddress = local.String()
	p := &prober{c: c, timeout: o.Timeout}

	// Test I.
	r1, err := p.binding(ctx, server, nil)
	if errors.Is(err, ErrNoResponse) {
		res.NATType = NATBlocked
		return res, nil
	}
	if err != nil {
		res.Detail = err.Error()
		return res, nil
	}
	res.PublicAddress = r1.mapped.String()
	if !r1.other.IsValid() {
		// Not even "open": without the change tests a firewall cannot be
		// told from none.
		res.Detail = "the server advertises no other address (OTHER-ADDRESS or CHANGED-ADDRESS): it cannot run the NAT tests"
		return res, nil
	}
	other := r1.other
	res.OtherAddress = other.String()
	natted := r1.mapped != local

	// Filtering: Test II (change IP and port), Test III (change port).
	r2, err2 := p.binding(ctx, server, &ChangeRequest{ChangeIP: true, ChangePort: true})
	if err2 == nil && (r2.from.Addr() == server.Addr() || r2.from.Port() == server.Port()) {
		res.Detail = fmt.Sprintf("the server answered a change of IP and port from %s: it cannot run the NAT tests", r2.from)
		return res, nil
	}
	if err2 == nil {
		res.Filtering = EndpointIndependent
	} else {
		r3, err3 := p.binding(ctx, server, &ChangeRequest{ChangePort: true})
		switch {
		case err3 == nil && r3.from.Port() == server.Port():
			res.Detail = fmt.Sprintf("the server answered a change of port from %s: it cannot run the NAT tests", r3.from)
			return res, nil
		case err3 == nil:
			res.Filtering = AddressDependent
		case errors.Is(err3, ErrNoResponse):
			res.Filtering = AddressAndPortDependent
		}
	}

	// Mapping: Test I to A2:P1, then to A2:P2.
	ra, errA := p.binding(ctx, netip.AddrPortFrom(other.Addr(), server.Port()), nil)
	if errA == nil {
		if ra.mapped == r1.mapped {
			res.Mapping = EndpointIndependent
		} else if rb, errB := p.binding(ctx, other, nil); errB == nil {
			if rb.mapped == ra.mapped {
				res.Mapping = AddressDependent
			} else {
				res.Mapping = AddressAndPortDependent
			}
		}
	}

	switch {
	case !natted && res.Filtering == EndpointIndependent:
		res.NATType = NATOpen
	case !natted:
		res.NATType = NATSymmetricUDPFirewall
	case res.Filtering == EndpointIndependent:
		res.NATType = NATFullCone
	case res.Mapping == BehaviorUnknown:
		res.Detail = "no answer from the server's other address: the mapping cannot be tested"
	case res.Mapping != EndpointIndependent:
		res.NATType = NATSymmetric
	case res.Filtering == AddressDependent:
		res.NATType = NATRestrictedCone
	case res.Filtering == AddressAndPortDependent:
		res.NATType = NATPortRestrictedCone
	}
	return res, nil
}

// bindToward binds a UDP socket on the local address the route to server
// leaves from, so that "no NAT" can be told from the mapped address.
func bindToward(server netip.AddrPort) (*net.UDPConn, error) {
	d, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return nil, fmt.Errorf("no route to %s: %w", server, err)
	}
	ip := d.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
	d.Close()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, fmt.Errorf("bind a probe socket on %s: %w", ip, err)
	}
	return c, nil
}

func localAddr(c *net.UDPConn, server netip.AddrPort) (netip.AddrPort, error) {
	la := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if !la.Addr().IsUnspecified() {
		return netip.AddrPortFrom(la.Addr().Unmap(), la.Port()), nil
	}
	d, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return la, fmt.Errorf("no route to %s: %w", server, err)
	}
	defer d.Close()
	return netip.AddrPortFrom(d.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), la.Port()), nil
}

type prober struct {
	c       *net.UDPConn
	timeout time.Duration
	buf     [1500]byte
}

type answer struct {
	mapped, other, from netip.AddrPort
}

// binding sends a Binding request to dst and waits for its answer,
// retransmitting; answers to other transactions are skipped.
func (p *prober) binding(ctx context.Context, dst netip.AddrPort, change *ChangeRequest) (answer, error) {
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest}
	if change != nil {
		setters = append(setters, *change)
	}
	req, err := stun.Build(append(setters, stun.Fingerprint)...)
	if err != nil {
		return answer{}, err
	}
	deadline := time.Now().Add(p.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	rto := 100 * time.Millisecond
	for {
		if _, err := p.c.WriteToUDPAddrPort(req.Raw, dst); err != nil {
			return answer{}, fmt.Errorf("send to %s: %w", dst, err)
		}
		next := time.Now().Add(rto)
		rto = min(2*rto, 800*time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		for {
			if ctx.Err() != nil {
				return answer{}, ctx.Err()
			}
			_ = p.c.SetReadDeadline(next)
			n, from, err := p.c.ReadFromUDPAddrPort(p.buf[:])
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					continue // an ICMP error from an earlier send
				}
				return answer{}, err
			}
			m := stun.New()
			if stun.Decode(p.buf[:n], m) != nil || m.TransactionID != req.TransactionID {
				continue
			}
			return parseAnswer(m, from)
		}
		if !time.Now().Before(deadline) {
			return answer{}, ErrNoResponse
		}
	}
}

func parseAnswer(m *stun.Message, from netip.AddrPort) (answer, error) {
	a := answer{from: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}
	if m.Type != stun.BindingSuccess {
		var ec stun.ErrorCodeAttribute
		_ = ec.GetFrom(m)
		return a, fmt.Errorf("%w: %v %d %s", ErrBadResponse, m.Type, ec.Code, ec.Reason)
	}
	var xa stun.XORMappedAddress
	var ma stun.MappedAddress
	switch {
	case xa.GetFrom(m) == nil:
		a.mapped = toAddrPort(xa.IP, xa.Port)
	case ma.GetFrom(m) == nil:
		a.mapped = toAddrPort(ma.IP, ma.Port)
	default:
		return a, fmt.Errorf("%w: no mapped address", ErrBadResponse)
	}
	var oa stun.MappedAddress
	if oa.GetFromAs(m, stun.AttrOtherAddress) == nil || oa.GetFromAs(m, stun.AttrChangedAddress) == nil {
		a.other = toAddrPort(oa.IP, oa.Port)
	}
	return a, nil
}

func toAddrPort(ip net.IP, port int) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}
