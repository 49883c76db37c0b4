package models

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound is returned when the addressed row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when an update names a version that is no
	// longer current: another writer committed first.
	ErrConflict = errors.New("version conflict")
	// ErrDuplicate is returned when a unique name is already taken.
	ErrDuplicate = errors.New("already exists")
	// ErrUnavailable wraps a driver error that says the database cannot
	// be reached now (see unavailable.go): retrying later may succeed.
	ErrUnavailable = errors.New("database unavailable")
)

// SecretError says which stored secret could not be decrypted. It never
// carries the secret itself.
type SecretError struct {
	Kind string // "trunk" or "extension"
	ID   uint
	Name string
	Err  error
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("cannot decrypt password of %s %q (id %d): %v", e.Kind, e.Name, e.ID, e.Err)
}

func (e *SecretError) Unwrap() error { return e.Err }
