package federation

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
)

// optionsRequest is an out-of-dialog OPTIONS to fqdn over conn, as
// Microsoft's federation test sends it.
func optionsRequest(conn net.Conn, fqdn, domain string, port int) string {
	local := conn.LocalAddr().String()
	return "OPTIONS sip:" + fqdn + ":" + strconv.Itoa(port) + ";transport=tls SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS " + local + ";branch=z9hG4bK" + token() + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:fsplane-check@" + domain + ">;tag=" + token() + "\r\n" +
		"To: <sip:" + fqdn + ">\r\n" +
		"Call-ID: " + token() + "@fsplane\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Contact: <sip:fsplane-check@" + local + ";transport=tls>\r\n" +
		"Accept: application/sdp\r\n" +
		"User-Agent: fsplane federation check\r\n" +
		"Content-Length: 0\r\n\r\n"
}

func token() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readFinalResponse reads SIP responses from r until a final one (>= 200)
// and returns its status code and reason.
func readFinalResponse(r *bufio.Reader) (int, string, error) {
	tp := textproto.NewReader(r)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return 0, "", err
		}
		if line == "" { // keep-alive CRLFs between messages
			continue
		}
		proto, rest, ok := strings.Cut(line, " ")
		if !ok || proto != "SIP/2.0" {
			return 0, "", fmt.Errorf("not a SIP response: %.60q", line)
		}
		codeStr, reason, _ := strings.Cut(rest, " ")
		code, err := strconv.Atoi(codeStr)
		if err != nil || code < 100 || code > 699 {
			return 0, "", fmt.Errorf("bad SIP status line: %.60q", line)
		}
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return 0, "", err
		}
		cl := h.Get("Content-Length")
		if cl == "" {
			cl = h.Get("L")
		}
		if n, _ := strconv.Atoi(cl); n > 0 {
			if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
				return 0, "", err
			}
		}
		if code >= 200 {
			return code, reason, nil
		}
	}
}
