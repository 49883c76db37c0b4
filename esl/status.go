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
	// Calls are the gateway's call counters, from the last `sofia
	// xmlstatus gateway` (absent before one answered).
	Calls *GatewayCalls `json:"calls,omitempty"`
	// LastRegister is the last REGISTER reply FreeSWITCH reported, from
	// the sofia::gateway_state event of the state change it caused
	// (absent until one was seen: the status query does not carry it).
	LastRegister *RegisterReply `json:"last_register,omitempty"`
}

// GatewayCalls are a gateway's calls since FreeSWITCH loaded it
// (xml_gateway_status: calls-in, calls-out, failed-calls-in,
// failed-calls-out).
type GatewayCalls struct {
	In        uint32 `json:"in"`
	Out       uint32 `json:"out"`
	FailedIn  uint32 `json:"failed_in"`
	FailedOut uint32 `json:"failed_out"`
}

// RegisterReply is a REGISTER reply as sofia::gateway_state reports it
// (sofia_reg.c sofia_reg_fire_custom_gateway_state_event: headers Status
// and Phrase, fired by sofia_reg_handle_sofia_r_register when the reply
// changed the gateway's state).
type RegisterReply struct {
	Status int       `json:"status"`           // SIP status code: 200, 403, 904 (no matching challenge), …
	Phrase string    `json:"phrase,omitempty"` // reason phrase: "Forbidden"
	State  string    `json:"state"`            // the state it led to: REGED, FAILED
	At     time.Time `json:"at"`
}
