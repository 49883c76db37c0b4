package registrar

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// Hooks for the external tests (torture, fuzz): the request path without
// a socket.

// Answer runs the whole request path on req, as a received request.
func (r *Registrar) Answer(req *sip.Request) *sip.Response { return r.safeAnswer(r.answer, req, nil) }

// NewParser is the parser the registrar's transports use.
var NewParser = newParser

// AnswerUnguarded is Answer without the panic guard, for the fuzzer.
func (r *Registrar) AnswerUnguarded(req *sip.Request) *sip.Response { return r.answer(req, nil) }

// Routable says whether a request's top Via can carry an answer back.
var Routable = routable

// Flush writes the changed bindings now, in the registrar's flush loop
// (Run must be running).
func (r *Registrar) Flush() error {
	done := make(chan error, 1)
	r.flushNow <- done
	return <-done
}

// SetUnregisterWait sets how long Unregister waits for its write (5 s);
// before Unregister is called.
func (r *Registrar) SetUnregisterWait(d time.Duration) { r.unregisterWait = d }
