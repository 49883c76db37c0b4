package api

import "fmt"

// Field rules live in package names; only numeric ranges, which are
// particular to each field, are checked here.

func checkRange(v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%d out of range %d-%d", v, lo, hi)
	}
	return nil
}
