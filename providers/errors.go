package providers

import "errors"

var (
	// ErrUnknownPreset is returned by ByName for a name that is no preset.
	ErrUnknownPreset = errors.New("providers: unknown preset")
	// ErrInvalidAddress is returned by Seed for an external address that is
	// not an address of the expected family.
	ErrInvalidAddress = errors.New("providers: invalid external address")
)
