//go:build !(linux && (amd64 || arm64))

package stun

import "net"

func (s *Server) serveUDP(r *responder, udp *[numUDP][]*net.UDPConn, sock int, c *net.UDPConn) error {
	return s.readLoop(r, udp, sock, c)
}
