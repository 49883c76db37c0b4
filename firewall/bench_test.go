package firewall

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsplane/fsplane/models"
)

func BenchmarkExportSeed(b *testing.B) {
	ranges, profiles := seedRanges(), seedProfiles()
	for _, f := range []string{FormatUFW, FormatNFT, FormatACL, FormatJSON} {
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Export(f, ranges, profiles); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPolicyLarge: 2000 ranges of 20 providers, the size of a large
// carrier list.
func BenchmarkPolicyLarge(b *testing.B) {
	var ranges []models.ProviderRange
	for i := range 2000 {
		ranges = append(ranges, models.ProviderRange{
			Provider: fmt.Sprintf("p%02d", i%20),
			CIDR:     fmt.Sprintf("10.%d.%d.0/24", i/256, i%256),
			Ports:    models.StringList{"5060/udp", "5061/tcp"},
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		pol, err := NewPolicy(ranges, seedProfiles())
		if err != nil {
			b.Fatal(err)
		}
		_ = pol.NFT()
		_ = pol.UFW()
	}
}

func BenchmarkParseUFWStatus(b *testing.B) {
	in, err := os.ReadFile(filepath.Join("testdata", "ufw", "status_mixed.txt"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseUFWStatus(bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
	}
}
