package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/providers"
	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/secrets"
)

// registrar builds fsplane's own SIP registrar when
// FSPLANE_REGISTRAR_LISTEN is set (nil otherwise) and declares its
// component. A registrar that fails (its port taken, the database gone at
// start) is restarted with backoff; the API and xml-curl keep serving.
func (a *app) registrar(s *models.Store, kr *secrets.Keyring, reg prometheus.Registerer, rg *runGroup, replica string) (*registrar.Registrar, *component, error) {
	rc := a.cfg.Registrar
	if rc.Listen == "" {
		return nil, nil, nil
	}
	var tlsConf *tls.Config
	if rc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(rc.TLSCert, rc.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("registrar TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var subscribe func(context.Context, func(string), func()) error
	if s.Dialect() == "postgres" {
		// Other replicas' registrations: each flush announces its AORs,
		// which this replica reads back (a connection of its own).
		subscribe = func(ctx context.Context, notify func(string), connected func()) error {
			down := false // log the changes only, not every retry of an outage
			return events.ListenChannel(ctx, a.cfg.DatabaseURL, models.BindingsChannel, notify, connected, func(err error) {
				switch {
				case err != nil && !down:
					a.log.Warn("registrar: not listening for other replicas' bindings; retrying", "err", err)
				case err == nil && down:
					a.log.Info("registrar: listening for other replicas' bindings again")
				}
				down = err != nil
			})
		}
	}
	r, err := registrar.New(registrar.Options{
		ReplicaID: replica, Subscribe: subscribe,
		Store: s, Logger: a.log.With("component", "registrar"), Registerer: reg,
		Listen: rc.Listen, TLSListen: rc.TLSListen, TLSConfig: tlsConf,
		DefaultExpires: rc.DefaultExpires, MinExpires: rc.MinExpires, MaxExpires: rc.MaxExpires,
		MaxContacts: rc.MaxContacts, MaxBindings: rc.MaxBindings, Algorithms: rc.DigestAlgorithms,
		Trusted: rc.Trusted,
		// Every replica shares the Fernet keys, so each accepts the
		// others' nonces.
		NonceKey: registrar.DeriveNonceKey(kr.Encoded()[0]),
	})
	if err != nil {
		return nil, nil, err
	}
	return r, rg.add("registrar", restart), nil
}

// registrarFallback is the directory's dial-string leg to fsplane's
// registrar ("" when it does not run, or listens on a port chosen at
// start): FreeSWITCH on this host reaches it on the internal profile.
func (a *app) registrarFallback() string {
	host, port, err := net.SplitHostPort(a.cfg.Registrar.Listen)
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return registrar.FallbackDialString(providers.ProfileInternal, net.JoinHostPort(host, port))
}
