package esl

import (
	"errors"
	"fmt"
)

var (
	// ErrAuth is returned when FreeSWITCH refuses the event socket password.
	ErrAuth = errors.New("event socket password refused")
	// ErrRejected is returned when FreeSWITCH's event socket ACL refuses
	// fsplane's address (text/rude-rejection).
	ErrRejected = errors.New("event socket ACL rejected this address")
	// ErrTimeout is returned when FreeSWITCH does not answer within the
	// deadline: while connecting, authenticating or running a command.
	ErrTimeout = errors.New("no answer from FreeSWITCH in time")
	// ErrUnreachable is wrapped by a failed TCP connect (refused,
	// unreachable, no answer): FreeSWITCH's event socket is not accepting.
	// Only then are probes worth it (Options.ProbeInterval).
	ErrUnreachable = errors.New("event socket not accepting connections")
	// ErrClosed is returned for a command on a connection that is gone.
	ErrClosed = errors.New("event socket connection closed")
	// ErrProtocol is returned when FreeSWITCH sends something the event
	// socket protocol does not allow at that point.
	ErrProtocol = errors.New("event socket protocol violation")
	// ErrInvalidCommand is returned, before anything is written, for a
	// command line that could carry a second command (CR or LF in it).
	ErrInvalidCommand = errors.New("refusing command line with CR or LF")
	// ErrInvalidValue is returned when a name cannot be put on an ESL
	// command line (see package names).
	ErrInvalidValue = errors.New("value not allowed on an ESL command line")
	// ErrCommandFailed is wrapped by every ReplyError.
	ErrCommandFailed = errors.New("FreeSWITCH reported a failure")
	// ErrNoSofia is returned when mod_sofia is not loaded ("sofia Command
	// not found").
	ErrNoSofia = errors.New("mod_sofia is not loaded")
	// ErrProfileNotRunning is returned when a sofia profile does not exist
	// in FreeSWITCH ("Invalid Profile").
	ErrProfileNotRunning = errors.New("sofia profile not running")
	// ErrTooEarly is returned when FreeSWITCH refuses to restart a profile
	// in its first 10 seconds.
	ErrTooEarly = errors.New("sofia profile too young to restart")
	// ErrPanic is returned when a panic was recovered in a connection's
	// reader; the connection is dropped and redialled.
	ErrPanic = errors.New("recovered panic")
	// ErrConfig is wrapped by every Options validation error.
	ErrConfig = errors.New("invalid ESL configuration")
)

// ReplyError is a command FreeSWITCH answered with a failure. Reply is
// FreeSWITCH's own text (it never contains secrets: fsplane sends none on
// command lines).
type ReplyError struct {
	Command string
	Reply   string
	// Kind is ErrCommandFailed or a more precise sentinel (ErrNoSofia,
	// ErrProfileNotRunning, ErrTooEarly).
	Kind error
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("esl: %q: %v: %q", e.Command, e.Kind, e.Reply)
}

// Unwrap lets errors.Is match the sentinel and ErrCommandFailed.
func (e *ReplyError) Unwrap() []error {
	if e.Kind == ErrCommandFailed {
		return []error{ErrCommandFailed}
	}
	return []error{e.Kind, ErrCommandFailed}
}
