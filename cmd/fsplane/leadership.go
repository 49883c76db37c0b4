package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/fsplane/fsplane/api"
	"github.com/fsplane/fsplane/esl"
	"github.com/fsplane/fsplane/leader"
	"github.com/fsplane/fsplane/models"
)

// replicaID names this process among the replicas sharing a database:
// hostname, pid and a random suffix (two processes in one test binary
// share the pid, a container's hostname may repeat).
func replicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "fsplane"
	}
	host = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return '_'
		}
		return r
	}, host)
	if len(host) > 30 {
		host = host[:30]
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ledESL is the ESL manager as the API sees it: each node also names this
// replica and the one that drives the nodes.
type ledESL struct {
	*esl.Manager
	el *leader.Elector
}

func (l ledESL) Nodes() []esl.NodeStatus {
	st := l.el.Status()
	nodes := l.Manager.Nodes()
	for i := range nodes {
		nodes[i].Replica, nodes[i].Leader = st.Replica, st.Leader
	}
	return nodes
}

// leaderCheck is /readyz's "leader" entry: who drives FreeSWITCH. A
// replica that cannot take part in the election is degraded (the detail
// stays generic: /readyz is public, the log has the error).
func leaderCheck(el *leader.Elector) api.Check {
	return func(context.Context) api.CheckResult {
		st := el.Status()
		switch {
		case st.Leading:
			return api.CheckResult{Status: "ok", Detail: fmt.Sprintf("this replica (%s) leads: it drives FreeSWITCH", st.Replica)}
		case st.Err != "":
			return api.CheckResult{Status: "degraded", Detail: fmt.Sprintf("this replica (%s) cannot take part in the leader election: %s",
				st.Replica, models.ErrUnavailable)}
		case st.Leader != "":
			return api.CheckResult{Status: "ok", Detail: fmt.Sprintf("replica %s leads; this replica (%s) is on standby", st.Leader, st.Replica)}
		}
		return api.CheckResult{Status: "ok", Detail: fmt.Sprintf("no replica leads at the moment; this replica (%s) is on standby", st.Replica)}
	}
}
