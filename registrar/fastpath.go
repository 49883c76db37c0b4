package registrar

import (
	"bytes"
	"net"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// The UDP fast path: REGISTERs arriving over UDP are answered statelessly
// (as Kamailio's registrar answers with sl), before sipgo's transaction
// layer would keep a server transaction, its goroutine and its timers
// for each of them (Timer J: 32 s). A retransmitted REGISTER is simply
// processed again: it carries the branch of the binding it made, so the
// Call-ID/CSeq check accepts it (see bind), and the answer is the same.
// Everything else goes on to sipgo.

var registerPrefix = []byte("REGISTER ")

// fastPath is sipgo's read filter on the UDP listener udp.
type fastPath struct {
	r      *Registrar
	udp    net.PacketConn
	parser *sip.Parser
	bufs   sync.Pool
}

func newFastPath(r *Registrar, udp net.PacketConn) *fastPath {
	return &fastPath{r: r, udp: udp, parser: newParser(),
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// filter answers a REGISTER datagram itself and hands sipgo nothing; any
// other datagram is handed on unchanged.
func (fp *fastPath) filter(props sip.TransportReadProps, data []byte) ([]byte, error) {
	if props.Transport != "UDP" && props.Transport != "udp" {
		return data, nil
	}
	if !bytes.HasPrefix(data, registerPrefix) {
		if fp.unsupportedScheme(props, data) {
			return nil, nil
		}
		return data, nil
	}
	msg, err := fp.parser.ParseSIP(data)
	if err != nil {
		return data, nil // sipgo logs and drops it, as any unparseable message
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return data, nil
	}
	src := props.RemoteAddr.String()
	req.SetSource(src)
	req.SetTransport("UDP")
	res := fp.r.safeAnswer(fp.r.answer, req, nil)
	if res == nil {
		return nil, nil
	}
	fp.r.m.response("REGISTER", res.StatusCode)
	dst := responseAddr(req, props.RemoteAddr)
	buf := fp.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	res.StringWrite(buf)
	if _, err := fp.udp.WriteTo(buf.Bytes(), dst); err != nil {
		fp.r.log.Debug("registrar: response not sent", "code", res.StatusCode, "err", err)
	}
	fp.bufs.Put(buf)
	return nil, nil
}

// unsupportedScheme answers 416 to a request whose Request-URI has a
// scheme other than sip or sips (RFC 4475 novelsc, "soap.beep://…"),
// which sipgo's parser refuses outright: the URI is set aside so that the
// rest can be parsed for the answer. It reports whether it answered.
func (fp *fastPath) unsupportedScheme(props sip.TransportReadProps, data []byte) bool {
	stand, ok := schemeStandIn(data)
	if !ok {
		return false
	}
	msg, err := fp.parser.ParseSIP(stand)
	if err != nil {
		return false
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.Method == sip.ACK || !routable(req) {
		return false
	}
	req.SetSource(props.RemoteAddr.String())
	req.SetTransport("UDP")
	res := fp.r.reply(req, 416, "Unsupported URI Scheme")
	fp.r.m.response(methodLabel(req.Method), 416)
	if _, err := fp.udp.WriteTo([]byte(res.String()), responseAddr(req, props.RemoteAddr)); err != nil {
		fp.r.log.Debug("registrar: response not sent", "code", 416, "err", err)
	}
	return true
}

// responseAddr is where a UDP response goes (RFC 3261 §18.2.2, RFC 3581):
// the source address, with the source port when the top Via asks for
// rport, else the Via's port (default 5060).
func responseAddr(req *sip.Request, src net.Addr) net.Addr {
	ua, ok := src.(*net.UDPAddr)
	if !ok {
		return src
	}
	v := req.Via()
	if v == nil {
		return src
	}
	if p, has := v.Params.Get("rport"); has && p == "" {
		return src
	}
	port := v.Port
	if port <= 0 {
		port = 5060
	}
	return &net.UDPAddr{IP: ua.IP, Port: port, Zone: ua.Zone}
}
