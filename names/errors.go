package names

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every error of this package.
var ErrInvalid = errors.New("invalid")

// Error is a refusal: its text says why, fit to stand beside the name of
// the field it concerns ("password: must not contain …"). It never holds a
// value that may be secret.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &Error{msg: fmt.Sprintf(format, args...)}
}
