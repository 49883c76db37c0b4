package registrar

import "errors"

var (
	// ErrConfig is returned by New for settings that cannot work together.
	ErrConfig = errors.New("registrar: invalid configuration")
	// ErrNotFound is returned by Unregister for a binding that does not
	// exist (or has expired).
	ErrNotFound = errors.New("registrar: no such binding")
	// ErrNotWritten is returned by Unregister when the removal was made
	// in memory but not written to the database (which the other
	// replicas read): the write is retried.
	ErrNotWritten = errors.New("registrar: removal not written to the database yet")
)
