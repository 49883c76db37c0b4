// Package pgtest runs a PostgreSQL cluster of a test's own, which the test
// may stop and start again: for tests of what fsplane does while its
// database is down. The cluster lives in a temp directory, listens on a
// loopback port only, and is removed when the test ends.
//
// The server binaries are taken from /usr/lib/postgresql/*/bin (the
// newest). Without them the test is skipped, or fails under CI=true:
// `make test` always provides them. As root, PostgreSQL runs as the
// postgres user, as scripts/pg-throwaway.sh does.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for CreateDB
)

// Server is one cluster. Its methods are not safe for concurrent use.
type Server struct {
	bin  string // PostgreSQL's bin directory
	dir  string // holds data/, server.log and the socket
	port int
	as   []string // command prefix that runs as the postgres user, if root
}

// Start creates a cluster with a "fsplane" superuser (trust auth on
// loopback) and starts it. It is stopped and removed at test cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binDir()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgtest: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; under CI=true they are required (run `make test`)")
		}
		t.Skip("pgtest: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
	}
	// Not t.TempDir: its parents are private to root, and the server,
	// running as postgres, must reach the directory.
	dir, err := os.MkdirTemp("", "fsplane-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{bin: bin, dir: dir, port: freePort(t)}
	t.Cleanup(func() {
		_ = s.pgctl("-m", "immediate", "stop")
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.as = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := s.run(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "fsplane", "-A", "trust",
		"-E", "UTF8", "--no-locale"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	s.Start(t)
	return s
}

// URL is the cluster's "postgres" database as the fsplane superuser.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://fsplane@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// CreateDB creates an empty database and returns its URL.
func (s *Server) CreateDB(t testing.TB, name string) string {
	t.Helper()
	db, err := sql.Open("pgx", s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return strings.Replace(s.URL(), "/postgres?", "/"+name+"?", 1)
}

// Stop kills the server the way a crash or a lost host would (pg_ctl
// stop -m immediate): open connections break, new ones are refused.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.pgctl("-m", "immediate", "stop"); err != nil {
		t.Fatalf("pgtest: stop: %v\n%s", err, s.log())
	}
}

// Start starts the server again on the same port and data, and returns
// once it accepts connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	// fsync=off is safe here: a stop kills the server, not the kernel
	// holding its writes. synchronous_commit stays on: with it off, commits
	// still in the WAL buffers would vanish at an immediate stop.
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c full_page_writes=off",
		s.port, s.dir)
	if err := s.pgctl("-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		t.Fatalf("pgtest: start: %v\n%s", err, s.log())
	}
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) pgctl(args ...string) error {
	out, err := s.run(filepath.Join(s.bin, "pg_ctl"), append([]string{"-D", s.data()}, args...)...)
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

func (s *Server) run(name string, args ...string) ([]byte, error) {
	argv := append(append(append([]string(nil), s.as...), name), args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

// binDir returns the newest /usr/lib/postgresql/N/bin holding pg_ctl.
func binDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "pg_ctl"))
		return err != nil
	})
	slices.SortFunc(dirs, func(a, b string) int { return version(a) - version(b) })
	if len(dirs) == 0 {
		return ""
	}
	return dirs[len(dirs)-1]
}

func version(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

// freePort returns a loopback port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
