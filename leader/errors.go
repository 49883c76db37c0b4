package leader

import "errors"

var (
	// ErrConfig is a bad Options value.
	ErrConfig = errors.New("leader: bad configuration")
	// ErrLost is why a leader stepped down: its session no longer holds
	// the lock (the connection broke, or the check failed).
	ErrLost = errors.New("leader: leadership lost")
	// ErrTaskReturned is a task that returned while it led and its context
	// had not ended; Run returns it (wrapping the task's error, if any).
	ErrTaskReturned = errors.New("leader: task returned while leading")
)
