package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fsplane/fsplane/config"
	"github.com/fsplane/fsplane/events"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/secrets"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// app is what every subcommand shares: the validated configuration and
// where to write.
type app struct {
	cfg    config.Config
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	// ready, when set, receives serve's bound address (tests).
	ready chan<- string
}

// flagEnv maps a persistent flag to the setting it overrides.
var flagEnv = map[string]string{
	"listen":          config.EnvListen,
	"data-dir":        config.EnvDataDir,
	"database-url":    config.EnvDatabaseURL,
	"fernet-key-file": config.EnvFernetKeyFile,
	"esl":             config.EnvESLNodes,
	"esl-password":    config.EnvESLPassword,
	"log-level":       config.EnvLogLevel,
	"log-format":      config.EnvLogFormat,
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return runContext(context.Background(), args, stdout, stderr, getenv, nil)
}

func runContext(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, ready chan<- string) int {
	a := &app{stdout: stdout, stderr: stderr, ready: ready}
	root := a.rootCmd(getenv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "fsplane:", err)
		return 1
	}
	return 0
}

func (a *app) rootCmd(getenv func(string) string) *cobra.Command {
	var configFile string
	root := &cobra.Command{
		Use:           "fsplane",
		Short:         "A control plane for FreeSWITCH",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.load(cmd.Flags(), configFile, getenv)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&configFile, "config", "", "config file of NAME=value lines (env "+config.EnvConfigFile+")")
	pf.String("listen", "", "platform API address (env "+config.EnvListen+", default :8001)")
	pf.String("data-dir", "", "directory for the SQLite database and key file (env "+config.EnvDataDir+", default ./data)")
	pf.String("database-url", "", "PostgreSQL URL (env "+config.EnvDatabaseURL+"); SQLite when empty")
	pf.String("fernet-key-file", "", "Fernet key file, newest key first (env "+config.EnvFernetKeyFile+")")
	pf.StringArray("esl", nil, "FreeSWITCH event socket host:port, repeatable (env "+config.EnvESLNodes+")")
	pf.String("esl-password", "", "event socket password (env "+config.EnvESLPassword+", default ClueCon)")
	pf.String("log-level", "", "debug, info, warn or error (env "+config.EnvLogLevel+")")
	pf.String("log-format", "", "text or json (env "+config.EnvLogFormat+")")

	root.AddCommand(a.serveCmd(), a.migrateCmd(), a.keysCmd(), a.tokenCmd(), a.versionCmd())
	for _, extra := range extraCommands {
		root.AddCommand(extra(a))
	}
	return root
}

// extraCommands are added by the files of further capabilities
// (firewall.go, freeswitch.go, …) from their init functions.
var extraCommands []func(*app) *cobra.Command

// load builds the configuration: defaults, config file, environment,
// flags; then validates it once.
func (a *app) load(flags *pflag.FlagSet, configFile string, getenv func(string) string) error {
	cfg := config.Default()
	if configFile == "" {
		configFile = getenv(config.EnvConfigFile)
	}
	if configFile != "" {
		if err := cfg.LoadFile(configFile); err != nil {
			return err
		}
	}
	if err := cfg.LoadEnv(getenv); err != nil {
		return err
	}
	var errs []error
	flags.Visit(func(f *pflag.Flag) {
		name, ok := flagEnv[f.Name]
		if !ok {
			return
		}
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		if err := cfg.Apply(name, v); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.Name, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	a.cfg = cfg
	a.log = newLogger(a.stderr, cfg.LogLevel, cfg.LogFormat)
	return nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// keyring loads the Fernet keys: inline keys, or the key file. With
// create, a missing key file is created (first start).
func (a *app) keyring(create bool) (kr *secrets.Keyring, created bool, err error) {
	if len(a.cfg.FernetKeys) > 0 {
		kr, err = secrets.Parse(a.cfg.FernetKeys...)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", config.EnvFernetKeys, err)
		}
		return kr, false, nil
	}
	if create {
		return secrets.EnsureFile(a.cfg.FernetKeyFile)
	}
	kr, err = secrets.LoadFile(a.cfg.FernetKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("no Fernet key file at %s (start `fsplane serve` once, or set %s)", a.cfg.FernetKeyFile, config.EnvFernetKeys)
	}
	return kr, false, err
}

// store loads the keys and opens the migrated database; createKey makes a
// missing key file (commands that may run before the first serve).
func (a *app) store(ctx context.Context, createKey bool) (*models.Store, error) {
	kr, _, err := a.keyring(createKey)
	if err != nil {
		return nil, err
	}
	return a.openStore(ctx, kr)
}

// openStore opens and migrates the configured database, for commands that
// publish their changes to no one in this process.
func (a *app) openStore(ctx context.Context, kr *secrets.Keyring) (*models.Store, error) {
	return a.open(ctx, kr, nil)
}

// openStoreWithBus opens and migrates the configured database with a new
// event bus receiving every commit: the bus exists only wired to its store,
// so no write can be committed before its publisher is in place.
func (a *app) openStoreWithBus(ctx context.Context, kr *secrets.Keyring) (*models.Store, *events.Bus, error) {
	bus := &events.Bus{}
	s, err := a.open(ctx, kr, bus.Publish)
	if err != nil {
		return nil, nil, err
	}
	return s, bus, nil
}

func (a *app) open(ctx context.Context, kr *secrets.Keyring, onCommit func(models.ChangeEvent)) (*models.Store, error) {
	s, err := models.Open(ctx, models.Config{
		DatabaseURL: a.cfg.DatabaseURL,
		SQLitePath:  a.cfg.SQLitePath(),
		Keys:        kr,
		OnCommit:    onCommit,
	})
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(a.stdout, "fsplane", version)
			return nil
		},
	}
}
