package esl

// handleEvent runs on the connection's event dispatcher, in FreeSWITCH's
// order; it must not block.
func (n *node) handleEvent(ev Event) {
	sub := ev.Subclass()
	n.m.met.events.WithLabelValues(n.addr, sub).Inc()
	gw := ev.Get("Gateway")
	if gw == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch sub {
	case "sofia::gateway_state":
		g := n.gws[gw]
		g.state, g.ping, g.at, g.fromEvent = ev.Get("State"), ev.Get("Ping-Status"), n.now(), true
		n.gws[gw] = g
		n.m.gatewayState(GatewayEvent{Node: n.addr, Gateway: gw, State: g.state})
	case "sofia::gateway_delete":
		delete(n.gws, gw)
		if ch, ok := n.waiters[gw]; ok {
			close(ch)
			delete(n.waiters, gw)
		}
		if profiles, ok := n.late[gw]; ok {
			delete(n.late, gw)
			for _, p := range profiles {
				n.lateRescan[p] = true
			}
			n.poke()
		}
	}
}

// expectDelete returns a channel closed when gateway's
// sofia::gateway_delete arrives; register before sending killgw.
func (n *node) expectDelete(gateway string) chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := make(chan struct{})
	n.waiters[gateway] = ch
	delete(n.late, gateway)
	return ch
}

func (n *node) cancelDelete(gateway string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.waiters, gateway)
}

// takeLate adds the rescans owed to gateways whose delete came after the
// wait for it had given up; they run at once.
func (n *node) takeLate() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p := range n.lateRescan {
		n.plan.rescan[p] = true
		n.sched.immediate = true
	}
	clear(n.lateRescan)
}
