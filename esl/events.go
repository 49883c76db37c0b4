package esl

import "strconv"

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
		out := GatewayEvent{Node: n.addr, Gateway: gw, State: g.state}
		// Status and Phrase come only with a REGISTER reply that changed
		// the state (sofia_reg.c sofia_reg_handle_sofia_r_register); the
		// state machine's own transitions (FAILED → FAIL_WAIT, …) carry
		// neither and keep the last one.
		if st := ev.Get("Status"); st != "" {
			if code, err := strconv.Atoi(st); err == nil && code > 0 && code < 1000 {
				g.reg = &RegisterReply{Status: code, Phrase: ev.Get("Phrase"), State: g.state, At: g.at}
				out.Status, out.Phrase = code, g.reg.Phrase
			} else {
				n.log.Warn("sofia::gateway_state with a Status that is no SIP status", "gateway", gw)
			}
		}
		n.gws[gw] = g
		n.m.gatewayState(out)
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
