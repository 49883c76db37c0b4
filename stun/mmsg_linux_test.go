//go:build linux && (amd64 || arm64)

package stun

import (
	"encoding/binary"
	"net"
	"testing"
	"unsafe"

	"github.com/pion/stun/v3"
	"golang.org/x/sys/unix"
)

// The batch path allocates nothing per request either: source parsing,
// rate limit, handle, queueing the answer, metrics.
func TestBatchAllocs(t *testing.T) {
	s, err := New(Options{Config: Config{Primary: tA1P1, RateLimit: 1e9}})
	if err != nil {
		t.Fatal(err)
	}
	r := fourSockets()
	b := newBatchIO()
	req := request(t, stun.Fingerprint)
	copy(b.inBuf[0][:], req)
	b.in[0].n = uint32(len(req))
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&b.inName[0]))
	sa.Family = unix.AF_INET
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], tSrc.Port())
	sa.Addr = tSrc.Addr().As4()
	var udp [numUDP][]*net.UDPConn
	if n := testing.AllocsPerRun(1000, func() {
		b.nOut = 0
		s.batchOne(r, &udp, sockA1P1, b, 0)
	}); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
	if b.nOut != 1 {
		t.Fatal("the answer was not queued")
	}
	out := unsafe.Slice(b.outIov[0].Base, b.outIov[0].Len)
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(decodeReply(t, out)); err != nil || xa.String() != tSrc.String() {
		t.Fatalf("queued answer maps %v (%v)", xa, err)
	}
}
