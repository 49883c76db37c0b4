package federation

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Refused is why the last replaced certificate was not put in place, ""
// when none was refused since.
func (s *Service) Refused() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Sync puts the configured certificate in place when it differs from the
// one there: validated first (same FQDN, chain, key matches, not
// expired); a refused one is reported and the old one stays. After an
// install FreeSWITCH is told through the change log (the ESL planner sends
// reloadcert). installed reports whether files were replaced.
func (s *Service) Sync(ctx context.Context) (installed bool, err error) {
	set, _, configured, err := s.Settings(ctx)
	if err != nil || !configured || !set.Enabled || set.CertFile == "" {
		return false, err
	}
	now := s.opt.Now()
	current, _ := LoadCertificate(filepath.Join(s.opt.TLSDir, AgentFile), "")
	if current != nil && Installed(s.opt.TLSDir) == nil {
		current = nil // agent.pem without cafile.pem: not in place
	}
	src, _ := LoadCertificate(set.CertFile, set.KeyFile)
	if current != nil {
		s.metrics.expiry.Set(float64(current.Leaf.NotAfter.Unix()))
	}
	if src != nil && current != nil && src.Leaf.Equal(current.Leaf) && bytes.Equal(src.KeyPEM, current.KeyPEM) {
		s.setRefused("", nil)
		return false, nil
	}
	roots, err := s.roots(set.CAFile)
	if err != nil {
		return false, err
	}
	c, chain, err := Prepare(set, roots, now)
	if err != nil {
		var der []byte
		if src != nil {
			der = src.Leaf.Raw
		}
		msg := fmt.Sprintf("the certificate in %s was not put in place: %s", set.CertFile, strings.TrimPrefix(err.Error(), ErrRefused.Error()+": "))
		if current != nil {
			msg += fmt.Sprintf("; the one in place stays (expires %s)", current.Leaf.NotAfter.UTC().Format(time.DateOnly))
		}
		if s.setRefused(msg, der) {
			s.metrics.renewals.WithLabelValues("refused").Inc()
			s.opt.Logger.Error("federation certificate refused", "file", set.CertFile, "err", err)
		}
		return false, nil
	}
	s.installMu.Lock()
	err = Install(s.opt.TLSDir, c, chain)
	s.installMu.Unlock()
	if err != nil {
		return false, err
	}
	s.setRefused("", nil)
	s.metrics.renewals.WithLabelValues("installed").Inc()
	s.metrics.expiry.Set(float64(c.Leaf.NotAfter.Unix()))
	s.opt.Logger.Info("federation certificate put in place", "fqdn", set.FQDN, "expires", c.Leaf.NotAfter, "first", current == nil)
	if err := s.opt.Store.CertificateRenewed(ctx, set.Profile, current == nil); err != nil {
		return true, fmt.Errorf("federation: tell FreeSWITCH about the new certificate: %w", err)
	}
	return true, nil
}

// setRefused records a refusal (msg "" clears it); it reports whether der
// is a leaf not refused before.
func (s *Service) setRefused(msg string, der []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := msg != "" && (der == nil || !bytes.Equal(der, s.refusedDER) || s.refused == "")
	s.refused, s.refusedDER = msg, der
	return fresh
}

// watchDirs are the directories of the certificate and key files: renewers
// replace files (or certbot's symlinks) there by rename.
func (s *Service) watchDirs(ctx context.Context) []string {
	set, _, configured, err := s.Settings(ctx)
	if err != nil || !configured || !set.Enabled {
		return nil
	}
	var dirs []string
	for _, f := range []string{set.CertFile, set.KeyFile} {
		if f == "" {
			continue
		}
		if d := filepath.Dir(f); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// Watch keeps the certificate in place until ctx ends: Sync at start, after
// every burst of changes in the watched directories (Debounce), every Poll,
// and when Changed is called (the settings changed). Errors are logged and
// retried at the next occasion; only a watcher that cannot be created ends
// it.
func (s *Service) Watch(ctx context.Context, changed <-chan struct{}) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("federation: watch certificate files: %w", err)
	}
	defer w.Close()
	var watched []string
	sync := func() {
		want := s.watchDirs(ctx)
		for _, d := range watched {
			if !slices.Contains(want, d) {
				_ = w.Remove(d)
			}
		}
		var now []string
		for _, d := range want {
			if slices.Contains(watched, d) {
				now = append(now, d)
				continue
			}
			if err := w.Add(d); err != nil {
				if !os.IsNotExist(err) {
					s.opt.Logger.Warn("federation: cannot watch the certificate directory; comparing periodically", "dir", d, "err", err)
				}
				continue
			}
			now = append(now, d)
		}
		watched = now
		if _, err := s.Sync(ctx); err != nil {
			s.opt.Logger.Warn("federation: certificate sync failed", "err", err)
		}
	}
	sync()
	poll := time.NewTicker(s.opt.Poll)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename|fsnotify.Remove) != 0 {
				debounce.Reset(s.opt.Debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			s.opt.Logger.Warn("federation: watching certificate files", "err", err)
		case <-debounce.C:
			sync()
		case <-poll.C:
			sync()
		case <-changed:
			sync()
		}
	}
}
