package esl

import "time"

// Connection states of a node.
const (
	StateConnecting = "connecting"
	StateConnected  = "connected"
	StateDown       = "down"
	// StateStandby: this replica does not drive the node (another replica
	// leads, see the leader package), or has not started to.
	StateStandby = "standby"
)

// NodeStatus is one FreeSWITCH node as fsplane sees it, for /readyz and
// GET /api/v1/esl/nodes.
type NodeStatus struct {
	Node      string    `json:"node"`  // host:port
	State     string    `json:"state"` // connecting, connected, down, standby
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Pending   int       `json:"pending"` // outbox commands not yet applied

	// LastErrorAt is when LastError happened. LastError is the current
	// problem: it is cleared once the node is connected, synced and owes
	// nothing (a value refused for the command line stays until another
	// error replaces it).
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// PreviousError is the last problem that is over, and
	// PreviousErrorAt when it happened.
	PreviousError   string    `json:"previous_error,omitempty"`
	PreviousErrorAt time.Time `json:"previous_error_at,omitzero"`
	// Switchname is the node's FreeSWITCH switchname (what trunk
	// Hostnames are matched against), once connected.
	Switchname string `json:"switchname,omitempty"`
	// AppliedChangeID is the node's cursor: every change up to this ID
	// has reached it.
	AppliedChangeID uint64 `json:"applied_change_id"`
	// Replica is the replica answering, and Leader the one that drives
	// the nodes (the leader package's IDs); set by whoever runs the
	// election, empty without one.
	Replica string `json:"replica,omitempty"`
	Leader  string `json:"leader,omitempty"`
	// RestartNeeded are the profiles whose replaced TLS certificate this
	// node reads only after `sofia profile P restart` (no reloadcert, and
	// restarts are not allowed).
	RestartNeeded []string `json:"restart_needed,omitempty"`
}

// GatewayStatus is one gateway on one node, from `sofia xmlstatus gateway`
// and sofia::gateway_state events.
type GatewayStatus struct {
	Node       string    `json:"node"`
	Gateway    string    `json:"gateway"`
	Profile    string    `json:"profile,omitempty"`
	State      string    `json:"state"`            // REGED, NOREG, FAIL_WAIT, …
	Status     string    `json:"status,omitempty"` // ping status: UP, DOWN
	Uptime     int64     `json:"uptime_seconds,omitempty"`
	Register   bool      `json:"register"`
	Healthy    bool      `json:"healthy"` // NOREG is healthy when register=false
	Detail     string    `json:"detail,omitempty"`
	ObservedAt time.Time `json:"observed_at"`
}
