package federation

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every refusal of a setting: the message names
// the field and why.
var ErrInvalid = errors.New("federation: invalid setting")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
