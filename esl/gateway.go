package esl

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fsplane/fsplane/models"
)

// Gateway states fsplane adds to FreeSWITCH's own (REGED, NOREG, …).
const (
	// GatewayAbsent: FreeSWITCH answered "Invalid Gateway": not loaded.
	GatewayAbsent = "ABSENT"
	// GatewayUnknown: the node could not be asked and no event told.
	GatewayUnknown = "UNKNOWN"
)

// xmlProfiles is `sofia xmlstatus` (mod_sofia.c cmd_xml_status).
type xmlProfiles struct {
	Profiles []struct {
		Name  string `xml:"name"`
		Type  string `xml:"type"`
		State string `xml:"state"`
	} `xml:"profile"`
}

// xmlGateway is `sofia xmlstatus gateway NAME` (mod_sofia.c
// xml_gateway_status). The call counters are the gateway's ib_calls,
// ob_calls, ib_failed_calls and ob_failed_calls, counted since it was
// loaded (a killgw and rescan starts them again).
type xmlGateway struct {
	Name           string  `xml:"name"`
	Profile        string  `xml:"profile"`
	State          string  `xml:"state"`
	Status         string  `xml:"status"`
	UptimeUsec     int64   `xml:"uptime-usec"`
	Realm          string  `xml:"realm"`
	Retry          string  `xml:"retry"`
	CallsIn        *uint32 `xml:"calls-in"`
	CallsOut       *uint32 `xml:"calls-out"`
	FailedCallsIn  *uint32 `xml:"failed-calls-in"`
	FailedCallsOut *uint32 `xml:"failed-calls-out"`
}

// calls is the counters when FreeSWITCH sent all four (older versions
// send none).
func (g xmlGateway) calls() *GatewayCalls {
	if g.CallsIn == nil || g.CallsOut == nil || g.FailedCallsIn == nil || g.FailedCallsOut == nil {
		return nil
	}
	return &GatewayCalls{In: *g.CallsIn, Out: *g.CallsOut, FailedIn: *g.FailedCallsIn, FailedOut: *g.FailedCallsOut}
}

// decodeXML reads FreeSWITCH's XML, which declares ISO-8859-1.
func decodeXML(s string, v any) error {
	d := xml.NewDecoder(strings.NewReader(s))
	d.CharsetReader = charsetReader
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: XML: %w", ErrProtocol, err)
	}
	return nil
}

// charsetReader decodes ISO-8859-1 (each byte is the code point) and passes
// UTF-8 and ASCII through.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1":
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(b)+len(b)/8)
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("unsupported charset %q", label)
}

// runningProfiles returns the profiles `sofia xmlstatus` lists as RUNNING
// (aliases are left out).
func runningProfiles(reply string) (map[string]bool, error) {
	var x xmlProfiles
	if err := decodeXML(reply, &x); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range x.Profiles {
		if p.Type == "profile" && strings.HasPrefix(strings.TrimSpace(p.State), "RUNNING") {
			out[strings.TrimSpace(p.Name)] = true
		}
	}
	return out, nil
}

func parseGateway(reply string) (xmlGateway, error) {
	var g xmlGateway
	err := decodeXML(reply, &g)
	g.Name, g.Profile = strings.TrimSpace(g.Name), strings.TrimSpace(g.Profile)
	g.State, g.Status = strings.TrimSpace(g.State), strings.TrimSpace(g.Status)
	return g, err
}

// gwState is what a node last learned of a gateway, from a query or a
// sofia::gateway_state event.
type gwState struct {
	profile   string
	state     string
	ping      string
	uptime    int64 // seconds
	at        time.Time
	fromEvent bool
	calls     *GatewayCalls // from the last query; nil before one
	// reg is the last REGISTER reply a sofia::gateway_state event
	// carried; a query does not tell it, so it is kept across queries.
	reg *RegisterReply
}

// healthy applies the trunk's expectations: a registering trunk must be
// REGED, an IP-authenticated one (register=false) is NOREG by design; a
// disabled trunk is healthy when it is not loaded; pings that fail make an
// otherwise good gateway unhealthy.
func healthy(t models.Trunk, state, ping string) bool {
	if !t.Enabled {
		return state == GatewayAbsent
	}
	if t.PingSeconds > 0 && strings.EqualFold(ping, "DOWN") {
		return false
	}
	if t.Register {
		return state == "REGED"
	}
	return state == "NOREG"
}
