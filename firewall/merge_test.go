package firewall

import (
	"net/netip"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestMergeExamples(t *testing.T) {
	for _, tc := range []struct {
		name          string
		in            []string
		merged, aggrd []string
	}{
		{
			name:   "seed plusnet: siblings stay apart when merging, join when aggregating",
			in:     []string{"92.197.182.0/24", "92.197.177.0/24", "92.197.176.0/24", "92.197.176.0/24"},
			merged: []string{"92.197.176.0/24", "92.197.177.0/24", "92.197.182.0/24"},
			aggrd:  []string{"92.197.176.0/23", "92.197.182.0/24"},
		},
		{
			name:   "contained ranges disappear, families stay apart",
			in:     []string{"2001:db8::/32", "10.0.0.0/8", "2001:db8:1::/48", "10.1.2.3/32", "::ffff:10.0.0.0/104"},
			merged: []string{"10.0.0.0/8", "::ffff:10.0.0.0/104", "2001:db8::/32"},
			aggrd:  []string{"10.0.0.0/8", "::ffff:10.0.0.0/104", "2001:db8::/32"},
		},
		{
			name:   "aggregation cascades",
			in:     []string{"10.0.0.3/32", "10.0.0.0/31", "10.0.0.2/32", "10.0.0.4/30"},
			merged: []string{"10.0.0.0/31", "10.0.0.2/32", "10.0.0.3/32", "10.0.0.4/30"},
			aggrd:  []string{"10.0.0.0/29"},
		},
		{
			name:   "adjacent but not siblings stay apart",
			in:     []string{"10.0.0.1/32", "10.0.0.2/32"},
			merged: []string{"10.0.0.1/32", "10.0.0.2/32"},
			aggrd:  []string{"10.0.0.1/32", "10.0.0.2/32"},
		},
		{
			name:   "whole space",
			in:     []string{"0.0.0.0/1", "128.0.0.0/1"},
			merged: []string{"0.0.0.0/1", "128.0.0.0/1"},
			aggrd:  []string{"0.0.0.0/0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := mustPrefixes(t, tc.in...)
			if got := MergePrefixes(in); !slices.Equal(got, mustPrefixes(t, tc.merged...)) {
				t.Errorf("MergePrefixes = %v, want %v", got, tc.merged)
			}
			if got := AggregatePrefixes(in); !slices.Equal(got, mustPrefixes(t, tc.aggrd...)) {
				t.Errorf("AggregatePrefixes = %v, want %v", got, tc.aggrd)
			}
		})
	}
}

// randomIn draws an address inside p.
func randomIn(t *rapid.T, p netip.Prefix, label string) netip.Addr {
	b := p.Addr().AsSlice()
	rnd := rapid.SliceOfN(rapid.Byte(), len(b), len(b)).Draw(t, label)
	for i := range b {
		// Bits of byte i that lie in the host part.
		hostBits := min(max(8*(i+1)-p.Bits(), 0), 8)
		mask := byte(1<<hostBits - 1)
		b[i] = b[i]&^mask | rnd[i]&mask
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func lastIn(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		hostBits := min(max(8*(i+1)-p.Bits(), 0), 8)
		b[i] |= byte(1<<hostBits - 1)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func covered(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkShape asserts what both merges promise about their output: sorted,
// masked, no prefix inside another.
func checkShape(t *rapid.T, name string, out []netip.Prefix) {
	for i, p := range out {
		if p != p.Masked() {
			t.Fatalf("%s: %v not masked", name, p)
		}
		if i > 0 {
			q := out[i-1]
			if comparePrefix(q, p) >= 0 {
				t.Fatalf("%s: %v before %v: not sorted", name, q, p)
			}
			if q.Overlaps(p) {
				t.Fatalf("%s: %v and %v overlap", name, q, p)
			}
		}
	}
}

// smallUniverse draws prefixes inside base, a network of 2^10 addresses,
// so overlaps, duplicates and siblings are frequent and every address can
// be checked.
func smallUniverse(base netip.Prefix) *rapid.Generator[netip.Prefix] {
	return rapid.Custom(func(t *rapid.T) netip.Prefix {
		bits := rapid.IntRange(base.Bits(), base.Addr().BitLen()).Draw(t, "bits")
		off := rapid.IntRange(0, 1023).Draw(t, "offset")
		b := base.Addr().AsSlice()
		n := len(b)
		b[n-1] = byte(off)
		b[n-2] |= byte(off >> 8)
		a, _ := netip.AddrFromSlice(b)
		return netip.PrefixFrom(a, bits).Masked()
	})
}

// TestMergeExhaustive checks every address of two small universes (one
// IPv4, one IPv6, drawn into the same input): after MergePrefixes and
// AggregatePrefixes exactly the addresses allowed before are allowed.
func TestMergeExhaustive(t *testing.T) {
	v4 := netip.MustParsePrefix("10.20.0.0/22")
	v6 := netip.MustParsePrefix("2001:db8::/118")
	rapid.Check(t, func(t *rapid.T) {
		in := append(
			rapid.SliceOfN(smallUniverse(v4), 0, 12).Draw(t, "v4"),
			rapid.SliceOfN(smallUniverse(v6), 0, 12).Draw(t, "v6")...)
		rapid.Permutation(in).Draw(t, "order")
		merged, aggr := MergePrefixes(in), AggregatePrefixes(in)
		checkShape(t, "merged", merged)
		checkShape(t, "aggregated", aggr)
		for _, p := range merged {
			if !slices.Contains(in, p) {
				t.Fatalf("MergePrefixes invented %v", p)
			}
		}
		for _, base := range []netip.Prefix{v4, v6} {
			a := base.Addr()
			for range 1 << 10 {
				want := covered(in, a)
				if covered(merged, a) != want || covered(aggr, a) != want {
					t.Fatalf("%v: allowed before %v, merged %v, aggregated %v", a, want, covered(merged, a), covered(aggr, a))
				}
				a = a.Next()
			}
		}
		// Aggregation is minimal: no two siblings left.
		for i := 1; i < len(aggr); i++ {
			p, q := aggr[i-1], aggr[i]
			if p.Bits() == q.Bits() && p.Bits() > 0 && p.Addr().BitLen() == q.Addr().BitLen() &&
				netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked() == netip.PrefixFrom(q.Addr(), q.Bits()-1).Masked() {
				t.Fatalf("siblings %v and %v not joined", p, q)
			}
		}
	})
}

// anyPrefix draws a prefix anywhere in either family, biased to a few
// networks so that inputs nest and touch.
func anyPrefix() *rapid.Generator[netip.Prefix] {
	return rapid.Custom(func(t *rapid.T) netip.Prefix {
		v6 := rapid.Bool().Draw(t, "v6")
		var b []byte
		if v6 {
			b = rapid.SliceOfN(rapid.SampledFrom([]byte{0, 1, 0x20, 0x0d, 0xb8, 0xff}), 16, 16).Draw(t, "addr6")
		} else {
			b = rapid.SliceOfN(rapid.SampledFrom([]byte{0, 1, 10, 128, 192, 255}), 4, 4).Draw(t, "addr4")
		}
		a, _ := netip.AddrFromSlice(b)
		return netip.PrefixFrom(a, rapid.IntRange(0, a.BitLen()).Draw(t, "bits")).Masked()
	})
}

// TestMergeSampled covers the whole address space by sampling: addresses
// inside every input stay allowed; addresses inside every output prefix,
// its first and last address and the ones just outside it are allowed
// after exactly when they were before.
func TestMergeSampled(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := rapid.SliceOfN(anyPrefix(), 0, 16).Draw(t, "in")
		for name, out := range map[string][]netip.Prefix{"merged": MergePrefixes(in), "aggregated": AggregatePrefixes(in)} {
			checkShape(t, name, out)
			for i, p := range in {
				if a := randomIn(t, p, "in"); !covered(out, a) {
					t.Fatalf("%s lost %v (from input %d, %v)", name, a, i, p)
				}
			}
			for _, p := range out {
				probes := []netip.Addr{p.Addr(), lastIn(p), randomIn(t, p, "out"), p.Addr().Prev(), lastIn(p).Next()}
				for _, a := range probes {
					if a.IsValid() && covered(out, a) != covered(in, a) {
						t.Fatalf("%s: %v allowed %v, before %v", name, a, covered(out, a), covered(in, a))
					}
				}
			}
		}
	})
}
