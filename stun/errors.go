package stun

import "errors"

// Configuration errors; Config.Validate wraps them with the offending value.
var (
	// ErrNoPrimary: the primary address is required.
	ErrNoPrimary = errors.New("no primary address")
	// ErrChangeRequestSize: a CHANGE-REQUEST value that is not 4 bytes
	// (a sentinel: the UDP loop builds no error per malformed request).
	ErrChangeRequestSize = errors.New("CHANGE-REQUEST: value is not 4 bytes")
	// ErrSecondary: the secondary address cannot form RFC 3489's four
	// addresses with the primary.
	ErrSecondary = errors.New("bad secondary address")
	// ErrAdvertised: an advertised address does not fit its socket.
	ErrAdvertised = errors.New("bad advertised address")
)

// Probe errors.
var (
	// ErrNoResponse: the server did not answer within the timeout.
	ErrNoResponse = errors.New("no response from the STUN server")
	// ErrBadResponse: the server's answer lacks a mapped address or is an
	// error response.
	ErrBadResponse = errors.New("unusable response from the STUN server")
)

var errZone = errors.New("zoned addresses are not supported")
