package esl

import (
	"context"
	"strings"

	"github.com/fsplane/fsplane/models"
)

// gatewayStatus answers for one node; ok is false when the trunk is not
// meant for it. A connected node is asked; otherwise, or when asking
// fails, the cache of the last answer or sofia::gateway_state event says.
func (n *node) gatewayStatus(ctx context.Context, t models.Trunk, cmd command) (GatewayStatus, bool) {
	n.mu.Lock()
	c, sw, state := n.c, n.switchname, n.st.State
	n.mu.Unlock()
	if sw != "" && !belongs(t.Hostnames, sw) {
		return GatewayStatus{}, false
	}
	gs := GatewayStatus{Node: n.addr, Gateway: t.Name, Register: t.Register}
	fromCache := func(detail string) GatewayStatus {
		n.mu.Lock()
		g, ok := n.gws[t.Name]
		n.mu.Unlock()
		if ok {
			gs.State, gs.Status, gs.Profile, gs.ObservedAt, gs.Uptime = g.state, g.ping, g.profile, g.at, g.uptime
			gs.Calls, gs.LastRegister = g.calls, g.reg
			source := "the last query"
			if g.fromEvent {
				source = "the last sofia::gateway_state event"
			}
			gs.Detail = detail + "; last known state, from " + source
		} else {
			gs.State, gs.ObservedAt, gs.Detail = GatewayUnknown, n.now(), detail
		}
		gs.Healthy = healthy(t, gs.State, gs.Status)
		return gs
	}
	if c == nil && state == StateStandby {
		return fromCache("this replica does not drive the node (standby): ask the leader"), true
	}
	if c == nil {
		return fromCache("node not connected"), true
	}
	// The caller going away must not abort the command mid-flight: that
	// would drop the node's connection (and resync it).
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.m.opt.HealthTimeout)
	defer cancel()
	reply, err := n.doCtx(qctx, c, cmd)
	if err != nil {
		return fromCache("query failed: " + err.Error()), true
	}
	gs.ObservedAt = n.now()
	if strings.HasPrefix(strings.TrimSpace(reply), "Invalid Gateway") {
		gs.State, gs.Detail = GatewayAbsent, "gateway not loaded on this node"
		gs.Healthy = healthy(t, gs.State, "")
		return gs, true
	}
	g, err := parseGateway(reply)
	if err != nil {
		return fromCache(err.Error()), true
	}
	gs.Profile, gs.State, gs.Status, gs.Uptime, gs.Calls = g.Profile, g.State, g.Status, g.UptimeUsec/1e6, g.calls()
	if g.Retry != "" {
		gs.Detail = "retry in " + g.Retry
	}
	gs.Healthy = healthy(t, gs.State, gs.Status)
	n.mu.Lock()
	reg := n.gws[t.Name].reg // only events tell it
	n.gws[t.Name] = gwState{profile: g.Profile, state: g.State, ping: g.Status, uptime: gs.Uptime, at: gs.ObservedAt, calls: gs.Calls, reg: reg}
	n.mu.Unlock()
	gs.LastRegister = reg
	return gs, true
}
