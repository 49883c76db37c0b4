package main

import (
	"crypto/tls"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/registrar"
	"github.com/fsplane/fsplane/secrets"
)

// registrar builds fsplane's own SIP registrar when
// FSPLANE_REGISTRAR_LISTEN is set (nil otherwise) and declares its
// component. A registrar that fails (its port taken, the database gone at
// start) is restarted with backoff; the API and xml-curl keep serving.
func (a *app) registrar(s *models.Store, kr *secrets.Keyring, reg prometheus.Registerer, rg *runGroup) (*registrar.Registrar, *component, error) {
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
	r, err := registrar.New(registrar.Options{
		Store: s, Logger: a.log.With("component", "registrar"), Registerer: reg,
		Listen: rc.Listen, TLSListen: rc.TLSListen, TLSConfig: tlsConf,
		DefaultExpires: rc.DefaultExpires, MinExpires: rc.MinExpires, MaxExpires: rc.MaxExpires,
		MaxContacts: rc.MaxContacts, MaxBindings: rc.MaxBindings, Algorithms: rc.DigestAlgorithms,
		// Every replica shares the Fernet keys, so each accepts the
		// others' nonces.
		NonceKey: registrar.DeriveNonceKey(kr.Encoded()[0]),
	})
	if err != nil {
		return nil, nil, err
	}
	return r, rg.add("registrar", restart), nil
}
