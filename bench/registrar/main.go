// Command registrar-bench is the helper of bench/registrar/run.sh (run by
// hand, not in CI): it seeds extensions for the REGISTER benchmark and
// writes the sipp injection file and Kamailio's password htable for the
// same users.
//
//	registrar-bench seed -users 10000 -dir WORK   (FSPLANE_DATA_DIR or DATABASE_URL, FSPLANE_FERNET_KEYS)
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fsplane/fsplane/config"
	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/secrets"
)

// Domain, user ids and password of the seeded extensions.
const (
	domain   = "bench.example"
	password = "bench-register-pw"
)

func user(i int) string { return fmt.Sprintf("u%05d", i) }

func main() {
	if len(os.Args) < 2 || os.Args[1] != "seed" {
		fmt.Fprintln(os.Stderr, "usage: registrar-bench seed -users N -dir WORK")
		os.Exit(2)
	}
	if err := seed(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "registrar-bench:", err)
		os.Exit(1)
	}
}

func seed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	users := fs.Int("users", 10000, "extensions to create")
	dir := fs.String("dir", ".", "where users.csv and kamailio-users.cfg go")
	_ = fs.Parse(args)
	// The same settings as `fsplane serve` (FSPLANE_DATA_DIR or
	// DATABASE_URL, FSPLANE_FERNET_KEYS), through its parser.
	conf := config.Default()
	if err := conf.LoadEnv(os.Getenv); err != nil {
		return err
	}
	if err := conf.Validate(); err != nil {
		return err
	}
	if len(conf.FernetKeys) == 0 {
		return fmt.Errorf("%s is required", config.EnvFernetKeys)
	}
	kr, err := secrets.Parse(conf.FernetKeys...)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvFernetKeys, err)
	}
	cfg := models.Config{DatabaseURL: conf.DatabaseURL, Keys: kr}
	if cfg.DatabaseURL == "" {
		cfg.SQLitePath = conf.SQLitePath()
	}
	ctx := context.Background()
	s, err := models.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	// Bulk insert: one-row transactions with change and audit events
	// would test nothing here.
	enc, err := kr.Encrypt(password)
	if err != nil {
		return err
	}
	const batch = 1000
	for i := 0; i < *users; i += batch {
		rows := make([]models.Extension, 0, batch)
		for j := i; j < min(i+batch, *users); j++ {
			rows = append(rows, models.Extension{Version: 1, Domain: domain, UserID: user(j), PasswordEnc: enc,
				Context: "default", Enabled: true})
		}
		if err := s.DB().WithContext(ctx).CreateInBatches(rows, batch).Error; err != nil {
			return err
		}
	}
	// sipp: one line per user, used in turn; field3 is the whole
	// [authentication] keyword, which sipp 3.6 parses when injected (it
	// cannot nest a [field] inside the keyword in the scenario).
	csv, err := os.Create(filepath.Join(*dir, "users.csv"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(csv)
	fmt.Fprintln(w, "SEQUENTIAL")
	for j := 0; j < *users; j++ {
		fmt.Fprintf(w, "%s;%s;%s;[authentication username=%s password=%s]\n", user(j), domain, password, user(j), password)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	csv.Close()
	// Kamailio: the same passwords in an htable, filled at start.
	kam, err := os.Create(filepath.Join(*dir, "kamailio-users.cfg"))
	if err != nil {
		return err
	}
	w = bufio.NewWriter(kam)
	fmt.Fprintln(w, "event_route[htable:mod-init] {")
	for j := 0; j < *users; j++ {
		fmt.Fprintf(w, "\t$sht(users=>%s) = \"%s\";\n", user(j), password)
	}
	fmt.Fprintln(w, "}")
	if err := w.Flush(); err != nil {
		return err
	}
	return kam.Close()
}
