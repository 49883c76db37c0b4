package providers

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

func addrs(ss ...string) func() ([]netip.Addr, error) {
	return func() ([]netip.Addr, error) {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

func TestResolveAddresses(t *testing.T) {
	tests := []struct {
		name         string
		opt          SeedOptions
		want4, want6 string
		wantNote     string // substring of the joined notes; "" = no notes
		wantErr      string
	}{
		{name: "given", opt: SeedOptions{ExternalIPv4: "46.4.96.105", ExternalIPv6: "2a01:4f8:140:829d::2",
			InterfaceAddrs: func() ([]netip.Addr, error) { t.Error("detection ran although both are given"); return nil, nil }},
			want4: "46.4.96.105", want6: "2a01:4f8:140:829d::2"},
		{name: "public preferred over private and ULA",
			opt:   SeedOptions{InterfaceAddrs: addrs("10.0.0.5", "fd00::5", "46.4.96.105", "fe80::1", "2a01:4f8:140:829d::2")},
			want4: "46.4.96.105", want6: "2a01:4f8:140:829d::2"},
		{name: "private fallback", opt: SeedOptions{ExternalIPv6: "2001:db8::1", InterfaceAddrs: addrs("192.168.1.10", "100.64.0.1")},
			want4: "192.168.1.10", want6: "2001:db8::1", wantNote: "no public IPv4 address found, using the private 192.168.1.10"},
		{name: "nothing but link-local", opt: SeedOptions{InterfaceAddrs: addrs("fe80::1", "169.254.1.1")},
			want4: "127.0.0.1", want6: "::1", wantNote: "no global IPv6 address found, using ::1"},
		{name: "ULA fallback", opt: SeedOptions{ExternalIPv4: "46.4.96.105", InterfaceAddrs: addrs("fd12::7")},
			want4: "46.4.96.105", want6: "fd12::7", wantNote: "FSPLANE_EXTERNAL_IPV6"},
		{name: "interfaces fail", opt: SeedOptions{InterfaceAddrs: func() ([]netip.Addr, error) { return nil, errors.New("boom") }},
			want4: "127.0.0.1", want6: "::1", wantNote: "cannot list network interfaces (boom)"},
		{name: "bad v4", opt: SeedOptions{ExternalIPv4: "2001:db8::1"}, wantErr: `external IPv4 "2001:db8::1"`},
		{name: "bad v6", opt: SeedOptions{ExternalIPv6: "46.4.96.105"}, wantErr: `external IPv6 "46.4.96.105"`},
		{name: "v6 with zone", opt: SeedOptions{ExternalIPv6: "fe80::1%eth0"}, wantErr: "is not an IPv6 address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveAddresses(tc.opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalidAddress) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.IPv4.String() != tc.want4 || got.IPv6.String() != tc.want6 {
				t.Errorf("got %s / %s, want %s / %s", got.IPv4, got.IPv6, tc.want4, tc.want6)
			}
			notes := strings.Join(got.Notes, "\n")
			if tc.wantNote == "" && notes != "" {
				t.Errorf("unexpected notes %q", notes)
			}
			if !strings.Contains(notes, tc.wantNote) {
				t.Errorf("notes %q lack %q", notes, tc.wantNote)
			}
		})
	}
}

func TestInterfaceAddrs(t *testing.T) {
	// Real interfaces: whatever they are, none is loopback or zoned.
	as, err := InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.IsLoopback() || a.Zone() != "" || a.Is4In6() {
			t.Errorf("InterfaceAddrs returned %s", a)
		}
	}
}

func TestSeed(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, backend string) {
		var events []models.ChangeEvent
		s := modelstest.Open(t, backend, modelstest.Options{OnCommit: func(e models.ChangeEvent) { events = append(events, e) }})
		ctx := context.Background()
		opt := SeedOptions{ExternalIPv4: "46.4.96.105", ExternalIPv6: "2a01:4f8:140:829d::2"}
		if err := Seed(ctx, s, opt); err != nil {
			t.Fatal(err)
		}
		profiles, err := s.ListProfiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(profiles) != 2 || profiles[0].Name != "external-ipv4" || profiles[1].Name != "internal" {
			t.Fatalf("profiles %+v", profiles)
		}
		ext, in := profiles[0], profiles[1]
		if ext.Family != models.FamilyIPv4 || ext.BindIP != "46.4.96.105" || ext.ExtRTPIP != "46.4.96.105" || ext.TLS {
			t.Errorf("external-ipv4 %+v", ext)
		}
		if in.Family != models.FamilyDual || in.BindIP != "::" || in.ExtSIPIP != "2a01:4f8:140:829d::2" ||
			in.ExtRTPIP != "2a01:4f8:140:829d::2" || !in.TLS || in.TLSPort != 5061 || in.WSSBinding != ":7443" {
			t.Errorf("internal %+v", in)
		}
		ranges, err := s.ListRanges(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range ranges {
			got = append(got, r.Provider+" "+r.CIDR+" "+strings.Join(r.Ports, ","))
		}
		want := []string{
			"1und1 2001:8d8:104:100:212:227:124:128/125 5060/udp",
			"1und1 212.227.124.0/24 5060/udp",
			"plusnet 92.197.176.0/24 5060/udp,5061/tcp",
			"plusnet 92.197.177.0/24 5060/udp,5061/tcp",
			"plusnet 92.197.182.0/24 5060/udp,5061/tcp",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("ranges\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(events) != 7 || events[0].Actor != "seed" {
			t.Errorf("%d events (first %+v), want 7 by seed", len(events), events[0])
		}

		// Idempotent: a second run (with other addresses) changes nothing.
		events = nil
		if err := Seed(ctx, s, SeedOptions{ExternalIPv4: "192.0.2.1", ExternalIPv6: "2001:db8::1"}); err != nil {
			t.Fatal(err)
		}
		if len(events) != 0 {
			t.Errorf("second seed wrote %d events", len(events))
		}

		// An operator's edits stay: a deleted plusnet range is not re-added
		// while plusnet has others, a deleted profile is not re-created.
		if err := s.DeleteRange(ctx, ranges[2].ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteProfile(ctx, in.ID, 0); err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges[:2] {
			if err := s.DeleteRange(ctx, r.ID, 0); err != nil {
				t.Fatal(err)
			}
		}
		events = nil
		if err := Seed(ctx, s, opt); err != nil {
			t.Fatal(err)
		}
		// Only 1und1, which had no range left, gets its two back.
		if len(events) != 2 || events[0].Name != "1und1" || events[1].Name != "1und1" {
			t.Errorf("third seed events %+v", events)
		}
		if ps, _ := s.ListProfiles(ctx); len(ps) != 1 {
			t.Errorf("profiles after re-seed: %d, want 1", len(ps))
		}
		if rs, _ := s.ListRanges(ctx, Plusnet); len(rs) != 2 {
			t.Errorf("plusnet ranges after re-seed: %d, want 2", len(rs))
		}
	})
}

func TestSeedRejectsBadAddress(t *testing.T) {
	s := modelstest.Open(t, "sqlite", modelstest.Options{})
	err := Seed(context.Background(), s, SeedOptions{ExternalIPv4: "not-an-ip", ExternalIPv6: "::1"})
	if !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("err = %v", err)
	}
	if ps, _ := s.ListProfiles(context.Background()); len(ps) != 0 {
		t.Errorf("profiles created despite the error: %d", len(ps))
	}
}
