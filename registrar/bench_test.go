package registrar_test

import (
	"fmt"
	"testing"

	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/registrar/registrartest"
)

// BenchmarkRegisterDigest: one registration (REGISTER, 401, REGISTER with
// MD5 digest, 200) per op over loopback UDP, users in turn, against a
// registrar on SQLite. bench/registrar/run.sh is the comparison with
// Kamailio; this isolates the registrar for profiling
// (-cpuprofile, -benchmem).
func BenchmarkRegisterDigest(b *testing.B) {
	s := benchStore(b, 200)
	_, udp, _ := registrartest.Start(b, registrar.Options{Store: s, MaxBindings: 1 << 20})
	c := registrartest.Dial(b, "udp", udp)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		user := fmt.Sprintf("b%03d", i%200)
		res := c.Register(registrartest.Reg{User: user, Domain: domain, Expires: "3600"}, "bench-pw-123", "MD5")
		if res.StatusCode != 200 {
			b.Fatalf("%s: %d", user, res.StatusCode)
		}
	}
}
