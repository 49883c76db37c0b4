package xmlcurl

import (
	"errors"
	"fmt"
)

var (
	// ErrUnrenderable is wrapped when a stored value cannot be put into
	// XML so that FreeSWITCH reads exactly what was stored (a control
	// character, invalid UTF-8). The row is left out of the answer.
	ErrUnrenderable = errors.New("xmlcurl: value cannot be rendered faithfully")
	// ErrIncomplete is wrapped when a row lacks what FreeSWITCH needs (a
	// registering trunk without password, a user without password); the
	// row is left out rather than rendered in a way FreeSWITCH misreads.
	ErrIncomplete = errors.New("xmlcurl: row is incomplete")
)

// skipError says which row was left out and why. It never carries a
// secret: only names and the reason.
type skipError struct {
	Kind string // "trunk", "extension", "profile", "range"
	Name string
	Err  error
}

func (e *skipError) Error() string {
	return fmt.Sprintf("xmlcurl: %s %q left out: %v", e.Kind, e.Name, e.Err)
}

func (e *skipError) Unwrap() error { return e.Err }
