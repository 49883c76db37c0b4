package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsplane/fsplane/auth"
	"github.com/fsplane/fsplane/config"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/secrets"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema to the newest version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.store(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := s.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "schema at %s (%s)\n", v, s.Dialect())
			return nil
		},
	}
}

func (a *app) keysCmd() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage the Fernet keys that seal SIP passwords"}
	var add bool
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Print a new Fernet key; with --add, put it in front of the key file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := secrets.GenerateKey()
			if err != nil {
				return err
			}
			if !add {
				fmt.Fprintln(a.stdout, k)
				return nil
			}
			if len(a.cfg.FernetKeys) > 0 {
				return fmt.Errorf("--add works on the key file; keys come from %s here", config.EnvFernetKeys)
			}
			kr, _, err := a.keyring(true)
			if err != nil {
				return err
			}
			kr, err = secrets.Prepend(kr, k)
			if err != nil {
				return err
			}
			if err := secrets.WriteFile(a.cfg.FernetKeyFile, kr); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "added a new first key to %s (%d keys); run `fsplane keys rotate` to re-seal\n", a.cfg.FernetKeyFile, kr.Len())
			return nil
		},
	}
	gen.Flags().BoolVar(&add, "add", false, "prepend the new key to the key file instead of printing it")

	var newKey bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-seal every SIP password under the newest key (safe to interrupt and re-run)",
		Long: "Re-seals every stored SIP password under the first key. With --new, a fresh key is\n" +
			"first put in front of the key file. Batches commit one by one: an interrupted run\n" +
			"leaves every password readable, and a re-run finishes the job. Old keys can be\n" +
			"removed from the key file once a run has finished.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kr, _, err := a.keyring(false)
			if err != nil {
				return err
			}
			if newKey {
				if len(a.cfg.FernetKeys) > 0 {
					return fmt.Errorf("--new works on the key file; keys come from %s here", config.EnvFernetKeys)
				}
				k, err := secrets.GenerateKey()
				if err != nil {
					return err
				}
				if kr, err = secrets.Prepend(kr, k); err != nil {
					return err
				}
				if err := secrets.WriteFile(a.cfg.FernetKeyFile, kr); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			s, err := a.openStore(ctx, kr)
			if err != nil {
				return err
			}
			defer s.Close()
			n, err := s.RotateSecrets(ctx, models.RotateOptions{})
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return fmt.Errorf("interrupted after re-sealing %d passwords; run it again to finish", n)
				}
				return err
			}
			fmt.Fprintf(a.stderr, "re-sealed %d passwords under the newest of %d keys\n", n, kr.Len())
			return nil
		},
	}
	rotate.Flags().BoolVar(&newKey, "new", false, "put a freshly generated key in front of the key file first")
	keys.AddCommand(gen, rotate)
	return keys
}

func (a *app) tokenCmd() *cobra.Command {
	tok := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	var scopes, name string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create --scope SCOPE[,SCOPE…]",
		Short: "Create an API token and print it alone on stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc, err := auth.ParseScopes(scopes)
			if err != nil {
				return err
			}
			s, err := a.store(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			text, err := createToken(cmd.Context(), s, name, sc, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, text)
			return nil
		},
	}
	create.Flags().StringVar(&scopes, "scope", "", "comma-separated scopes: admin, sip:read, sip:write, sip:secrets, firewall:read, xmlcurl")
	create.Flags().StringVar(&name, "name", "cli", "a label for the token")
	create.Flags().DurationVar(&ttl, "ttl", 0, "expiry, e.g. 720h; 0 never expires")
	_ = create.MarkFlagRequired("scope")
	tok.AddCommand(create)
	return tok
}

func createToken(ctx context.Context, s *models.Store, name string, scopes []string, ttl time.Duration) (string, error) {
	text, err := auth.NewToken()
	if err != nil {
		return "", err
	}
	row := &models.APIToken{Name: name, Hash: auth.Hash(text), Scopes: scopes}
	if ttl > 0 {
		exp := time.Now().Add(ttl).UTC()
		row.ExpiresAt = &exp
	}
	ctx = models.WithActor(ctx, models.Actor{Name: "cli"})
	if err := s.CreateToken(ctx, row); err != nil {
		return "", err
	}
	return text, nil
}
