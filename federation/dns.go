package federation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Resolver asks one DNS server, always with absolute names.
type Resolver struct {
	Server  string        // host:port
	Timeout time.Duration // per question; 3s when 0
}

// SystemResolver is the first nameserver of /etc/resolv.conf and its
// search suffixes (used only to explain a name that resolves nowhere
// else).
func SystemResolver() (Resolver, []string, error) { return resolverFrom("/etc/resolv.conf") }

// resolverFrom reads a resolv.conf.
func resolverFrom(file string) (Resolver, []string, error) {
	cc, err := dns.ClientConfigFromFile(file)
	if err != nil {
		return Resolver{}, nil, fmt.Errorf("system resolver: %w (give a resolver HOST:PORT)", err)
	}
	if len(cc.Servers) == 0 {
		return Resolver{}, nil, fmt.Errorf("system resolver: no nameserver in %s (give a resolver HOST:PORT)", file)
	}
	return Resolver{Server: net.JoinHostPort(cc.Servers[0], cc.Port)}, cc.Search, nil
}

// errNXDomain: the name does not exist.
var errNXDomain = errors.New("does not exist (NXDOMAIN)")

// query asks for name (made absolute) and returns the answer section.
// Truncated UDP answers are asked again over TCP.
func (r Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Net: "udp", Timeout: timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.Server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w", r.Server, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
		return in.Answer, nil
	case dns.RcodeNameError:
		return nil, errNXDomain
	default:
		return nil, fmt.Errorf("%s answered %s", r.Server, dns.RcodeToString[in.Rcode])
	}
}

// addrs returns the A and AAAA addresses of name (CNAMEs followed by the
// server).
func (r Resolver) addrs(ctx context.Context, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	var firstErr error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, name, t)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, rr := range rrs {
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
					out = append(out, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA); ok {
					out = append(out, a)
				}
			}
		}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// srv returns the SRV records of name.
func (r Resolver) srv(ctx context.Context, name string) ([]*dns.SRV, error) {
	rrs, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var out []*dns.SRV
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, s)
		}
	}
	return out, nil
}
