package secrets

import "errors"

var (
	// ErrInvalidToken is returned for a token that no key of the ring
	// verifies, or that is malformed. It says nothing about which.
	ErrInvalidToken = errors.New("secrets: invalid or undecryptable Fernet token")
	// ErrNoKeys is returned when a ring would hold no key at all.
	ErrNoKeys = errors.New("secrets: no Fernet key configured")
)
