package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fsplane/fsplane/federation"
	"github.com/fsplane/fsplane/firewall"
	"github.com/fsplane/fsplane/models"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.firewallCmd() })
}

func (a *app) firewallCmd() *cobra.Command {
	fw := &cobra.Command{
		Use:   "firewall",
		Short: "Host firewall rules (UFW, nftables) and the FreeSWITCH ACL from the provider ranges",
	}
	fw.AddCommand(a.firewallExportCmd(), a.firewallDiffCmd())
	return fw
}

func (a *app) firewallExportCmd() *cobra.Command {
	var format, provider string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print the firewall rules: ufw commands, an nft ruleset, acl.conf or JSON",
		Long: `Print the rules generated from the stored provider ranges and profiles.

  ufw   shell lines "ufw allow … comment 'fsplane:<provider>'"; re-running them is idempotent
  nft   one "nft -f" ruleset in table inet fsplane; re-loading replaces only that table
  acl   the acl.conf with the sip-gateways list FreeSWITCH fetches over xml-curl
  json  the rules as a machine-readable list

With --provider only that provider's ranges are exported, without the
general rules from profile settings (WebRTC, RTP).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if provider != "" {
				if err := firewall.ValidateProvider(provider); err != nil {
					return fmt.Errorf("--provider: %w", err)
				}
				if format == firewall.FormatNFT {
					// Loading it would replace the table that holds every
					// provider's sets.
					return errors.New("--provider cannot be used with --format nft: the ruleset replaces table inet fsplane as a whole")
				}
			}
			ranges, profiles, general, err := a.firewallInput(cmd.Context(), provider)
			if err != nil {
				return err
			}
			if provider != "" && len(ranges) == 0 {
				return fmt.Errorf("no ranges stored for provider %q", provider)
			}
			body, _, err := firewall.Export(format, ranges, profiles, general...)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(body)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", firewall.FormatUFW, "ufw, nft, acl or json")
	cmd.Flags().StringVar(&provider, "provider", "", "only this provider's ranges")
	return cmd
}

func (a *app) firewallDiffCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show the ufw commands that bring UFW to the generated rules",
		Long: `Compare the generated UFW rules with what UFW has and print the ufw
commands to add missing rules, to update rules that lack fsplane's comment,
and to delete stale rules marked "fsplane:" that are no longer generated.

UFW's rules are read from "ufw status" (run with LC_ALL=C; when UFW is
inactive, from "ufw show added"), or with --from from a file holding the
output of either ("-" for stdin).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.ufwStatus(cmd.Context(), from)
			if err != nil {
				return err
			}
			ranges, profiles, general, err := a.firewallInput(cmd.Context(), "")
			if err != nil {
				return err
			}
			pol, err := firewall.NewPolicy(ranges, profiles, general...)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(firewall.DiffUFW(pol, st).Script())
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", `read "ufw status" or "ufw show added" output from this file ("-" for stdin) instead of running ufw`)
	return cmd
}

// firewallInput loads the ranges (of one provider, or all with their
// profiles) from the store.
// firewallInput loads the ranges (of provider, or all) and, for all, the
// profiles and the federation port: the general rules.
func (a *app) firewallInput(ctx context.Context, provider string) ([]models.ProviderRange, []models.Profile, []firewall.PortSpec, error) {
	kr, _, err := a.keyring(false)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := a.openStore(ctx, kr)
	if err != nil {
		return nil, nil, nil, err
	}
	defer s.Close()
	if provider != "" {
		ranges, err := s.ListRanges(ctx, provider)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("list provider ranges: %w", err)
		}
		return ranges, nil, nil, nil
	}
	return federation.PolicyInput(ctx, s)
}

// ufwStatus reads UFW's rules from a file, stdin, or ufw itself.
func (a *app) ufwStatus(ctx context.Context, from string) (*firewall.UFWStatus, error) {
	var r io.Reader
	switch from {
	case "":
		out, err := runUFW(ctx, "status")
		if err != nil {
			return nil, err
		}
		st, err := firewall.ParseUFWStatus(bytes.NewReader(out))
		if err != nil || !st.Inactive {
			return st, err
		}
		// An inactive UFW lists nothing but still has its rules.
		fmt.Fprintln(a.stderr, "ufw is inactive; comparing with `ufw show added`")
		if out, err = runUFW(ctx, "show", "added"); err != nil {
			return nil, err
		}
		r = bytes.NewReader(out)
	case "-":
		r = os.Stdin
	default:
		f, err := os.Open(from)
		if err != nil {
			return nil, fmt.Errorf("--from: %w", err)
		}
		defer f.Close()
		r = f
	}
	return firewall.ParseUFWStatus(r)
}

func runUFW(ctx context.Context, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("ufw")
	if err != nil {
		// Not on a non-root user's PATH on Debian.
		if _, serr := os.Stat("/usr/sbin/ufw"); serr != nil {
			return nil, fmt.Errorf("ufw not found (install it, or pass its output with --from): %w", err)
		}
		bin = "/usr/sbin/ufw"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	// ufw translates its output; the parser reads the C locale.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ufw %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
