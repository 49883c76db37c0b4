package xmlcurl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// Path is where the platform API mounts the handler.
const Path = "/api/v1/sip/xml-curl"

// BindingTimeout is the timeout freeswitch-config puts into the binding, in
// seconds. mod_xml_curl's default is 0, wait forever, and sofia serialises
// registrations behind a slow lookup; the handler's own database deadline
// (2 s) stays inside it, so a stuck database still yields an answer.
const BindingTimeout = 3

// Binding describes how FreeSWITCH reaches this backend.
type Binding struct {
	URL            string // e.g. http://10.0.0.5:8001/api/v1/sip/xml-curl
	User, Password string // HTTP Basic (gateway-credentials); both required
}

// BindingConfig renders autoload_configs/xml_curl.conf.xml for b.
func BindingConfig(b Binding) ([]byte, error) {
	if b.URL == "" || b.User == "" || b.Password == "" {
		return nil, fmt.Errorf("%w: the binding needs a URL, a user and a password", ErrIncomplete)
	}
	if strings.Contains(b.User, ":") {
		// curl splits CURLOPT_USERPWD at the first colon.
		return nil, fmt.Errorf("%w: the Basic user must not contain ':'", ErrUnrenderable)
	}
	var p params
	p.add("gateway-url", b.URL)
	p.add("gateway-credentials", b.User+":"+b.Password)
	p.add("auth-scheme", "basic")
	p.add("timeout", strconv.Itoa(BindingTimeout))
	if p.err != nil {
		return nil, p.err
	}
	cfg := etree.NewElement("configuration")
	cfg.CreateAttr("name", "xml_curl.conf")
	cfg.CreateAttr("description", "cURL XML Gateway")
	be := cfg.CreateElement("bindings").CreateElement("binding")
	be.CreateAttr("name", "fsplane")
	p.writeTo(be, "param")
	// Only these two sections are fsplane's; dialplan and phrases stay
	// with FreeSWITCH's own files and cost no HTTP round trip.
	be.ChildElements()[0].CreateAttr("bindings", "directory|configuration")
	return staticFile(cfg)
}

// EventSocket describes the event socket fsplane connects to.
type EventSocket struct {
	Addr     string // host:port fsplane dials, e.g. 127.0.0.1:8021
	Password string
}

// EventSocketConfig renders autoload_configs/event_socket.conf.xml. A
// loopback address gets FreeSWITCH's loopback.auto ACL; any other address
// is left to the operator's ACL (a comment says so).
func EventSocketConfig(es EventSocket) ([]byte, error) {
	host, port, err := splitHostPort(es.Addr)
	if err != nil {
		return nil, err
	}
	if es.Password == "" || strings.ContainsAny(es.Password, "\r\n") {
		return nil, fmt.Errorf("%w: the event socket password must be one non-empty line", ErrUnrenderable)
	}
	listen := "::"
	loopback := false
	if a, err := netip.ParseAddr(host); err == nil {
		listen, loopback = a.String(), a.IsLoopback()
	}
	var p params
	p.add("nat-map", "false")
	p.add("listen-ip", listen)
	p.add("listen-port", port)
	p.add("password", es.Password)
	if loopback {
		p.add("apply-inbound-acl", "loopback.auto")
	}
	if p.err != nil {
		return nil, p.err
	}
	cfg := etree.NewElement("configuration")
	cfg.CreateAttr("name", "event_socket.conf")
	cfg.CreateAttr("description", "Socket Client")
	if !loopback {
		cfg.CreateComment(" fsplane reaches this socket over the network: add apply-inbound-acl with a list admitting only fsplane's address ")
	}
	p.writeTo(cfg.CreateElement("settings"), "param")
	return staticFile(cfg)
}

func splitHostPort(addr string) (host, port string, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("%w: event socket address %q is not host:port", ErrIncomplete, addr)
	}
	host, port = strings.Trim(addr[:i], "[]"), addr[i+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%w: event socket address %q has no valid port", ErrIncomplete, addr)
	}
	return host, port, nil
}

// staticFile serialises a <configuration> element as a file for
// FreeSWITCH's conf directory, which goes through the same pre-processor
// as an xml_curl answer.
func staticFile(cfg *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.WriteSettings.CanonicalAttrVal = true
	doc.SetRoot(cfg)
	return serialize(doc)
}
