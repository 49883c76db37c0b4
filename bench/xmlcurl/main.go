// Command xmlcurl-bench is the helper of bench/xmlcurl/run.sh (run by hand,
// not in CI): it seeds a database with many extensions and trunks, warms
// fsplane's xml-curl cache, and serves the fixed-body baseline that
// fsplane's rate is compared with.
//
//	xmlcurl-bench seed  -users 100000 -trunks 50   (DATABASE_URL, FSPLANE_FERNET_KEYS)
//	xmlcurl-bench warm  -url http://127.0.0.1:8001 -users 100000 -auth user:pass
//	xmlcurl-bench fixed -listen 127.0.0.1:8002 -size 812
//	xmlcurl-bench handler -listen 127.0.0.1:8003 -auth user:pass   (DATABASE_URL, FSPLANE_FERNET_KEYS)
//
// handler serves xmlcurl.Handler alone on a bare net/http server, the
// same server the fixed baseline uses: set against `fsplane serve` it
// separates the handler's cost from the platform's (echo, middleware,
// timeouts, background work).
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/providers"
	"github.com/fsplane/fsplane/secrets"
	"github.com/fsplane/fsplane/xmlcurl"
)

// Domain and first user id of the seeded extensions; sipauth.lua uses the
// same.
const (
	domain    = "bench.example"
	firstUser = 10000
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: xmlcurl-bench seed|warm|fixed [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "seed":
		err = seed(os.Args[2:])
	case "warm":
		err = warm(os.Args[2:])
	case "fixed":
		err = fixed(os.Args[2:])
	case "handler":
		err = handler(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmlcurl-bench:", err)
		os.Exit(1)
	}
}

func seed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	users := fs.Int("users", 100000, "extensions to create")
	trunks := fs.Int("trunks", 50, "trunks to create")
	_ = fs.Parse(args)
	kr, err := secrets.Parse(strings.Split(os.Getenv("FSPLANE_FERNET_KEYS"), ",")...)
	if err != nil {
		return fmt.Errorf("FSPLANE_FERNET_KEYS: %w", err)
	}
	ctx := context.Background()
	s, err := models.Open(ctx, models.Config{DatabaseURL: os.Getenv("DATABASE_URL"), Keys: kr})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	if err := providers.Seed(ctx, s, providers.SeedOptions{
		ExternalIPv4: "192.0.2.10", ExternalIPv6: "2001:db8::10",
	}); err != nil {
		return err
	}
	start := time.Now()
	// Bulk insert: the store's one-row transactions with change and audit
	// events would take minutes for 100,000 rows and test nothing here.
	const batch = 1000
	for i := 0; i < *users; i += batch {
		rows := make([]models.Extension, 0, batch)
		for j := i; j < min(i+batch, *users); j++ {
			enc, err := kr.Encrypt(fmt.Sprintf("pw-%d-secret", j))
			if err != nil {
				return err
			}
			rows = append(rows, models.Extension{
				Version: 1, Domain: domain, UserID: fmt.Sprint(firstUser + j), PasswordEnc: enc,
				DisplayName: fmt.Sprintf("User %d", j), CallerID: fmt.Sprintf("+4930%07d", j),
				Context: "default", Enabled: true,
			})
		}
		if err := s.DB().WithContext(ctx).CreateInBatches(rows, batch).Error; err != nil {
			return fmt.Errorf("insert extensions: %w", err)
		}
	}
	for i := 0; i < *trunks; i++ {
		preset := providers.Plusnet
		if i%2 == 1 {
			preset = providers.OneAndOne
		}
		p, err := providers.ByName(preset)
		if err != nil {
			return err
		}
		t := p.Trunk()
		t.Name = fmt.Sprintf("%s-%02d", preset, i)
		if p.NeedsCredentials {
			t.Username = fmt.Sprintf("49345566%04d", i)
			t.Password = ptr(fmt.Sprintf("trunk-%d-secret", i))
		}
		if err := s.CreateTrunk(ctx, &t); err != nil {
			return fmt.Errorf("create trunk %s: %w", t.Name, err)
		}
	}
	fmt.Fprintf(os.Stderr, "seeded %d extensions and %d trunks in %s\n", *users, *trunks, time.Since(start).Round(time.Millisecond))
	return nil
}

func ptr[T any](v T) *T { return &v }

// SipAuthBody is a REGISTER's directory lookup shaped like the one
// FreeSWITCH 1.10.12 sent (xmlcurl/testdata/freeswitch-requests/register.txt).
func SipAuthBody(user string) string {
	return "hostname=vm&section=directory&tag_name=domain&key_name=name&key_value=" + domain +
		"&Event-Name=REQUEST_PARAMS&Core-UUID=4f030381-44f9-4bbd-bf1d-4c50c84a6347&FreeSWITCH-Hostname=vm" +
		"&FreeSWITCH-Switchname=vm&FreeSWITCH-IPv4=192.0.2.2&FreeSWITCH-IPv6=fd00%3A%3A2" +
		"&Event-Date-Local=2026-11-22%2018%3A18%3A06&Event-Date-GMT=Sun,%2022%20Nov%202026%2018%3A18%3A06%20GMT" +
		"&Event-Date-Timestamp=1795371486422668&Event-Calling-File=sofia_reg.c&Event-Calling-Function=sofia_reg_parse_auth" +
		"&Event-Calling-Line-Number=3124&Event-Sequence=370&action=sip_auth&sip_profile=internal" +
		"&sip_user_agent=sipsak%200.9.8.1&sip_auth_username=" + user + "&sip_auth_realm=" + domain +
		"&sip_auth_nonce=f4203df3-11bf-4486-842f-e990c4f50909&sip_auth_uri=sip%3A" + domain + "%3A5090" +
		"&sip_contact_user=" + user + "&sip_contact_host=127.0.0.1&sip_to_user=" + user + "&sip_to_host=" + domain +
		"&sip_to_port=5090&sip_via_protocol=udp&sip_from_user=" + user + "&sip_from_host=" + domain +
		"&sip_from_port=5090&sip_call_id=1609648476%40127.0.0.1&sip_request_host=" + domain +
		"&sip_request_port=5090&sip_auth_qop=auth&sip_auth_cnonce=3f0f38a4&sip_auth_nc=00000001" +
		"&sip_auth_response=5d7402cbea6d0c294201bd7c222f5f29&sip_auth_method=REGISTER&client_port=37941" +
		"&key=id&user=" + user + "&domain=" + domain + "&ip=127.0.0.1"
}

// warm looks every user up once, so the wrk run that follows measures the
// cache.
func warm(args []string) error {
	fs := flag.NewFlagSet("warm", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8001", "fsplane base URL")
	users := fs.Int("users", 100000, "users to look up")
	creds := fs.String("auth", "", "Basic user:password")
	// Two workers: models' PostgreSQL pool keeps two idle connections, and
	// more concurrent cold lookups make it open and close one per request.
	workers := fs.Int("workers", 2, "concurrent requests")
	_ = fs.Parse(args)
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(*creds))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers}, Timeout: 10 * time.Second}
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*users) {
					return
				}
				user := fmt.Sprint(firstUser + i)
				req, _ := http.NewRequest(http.MethodPost, *url+"/api/v1/sip/xml-curl", strings.NewReader(SipAuthBody(user)))
				req.Header.Set("Authorization", authz)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := client.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					bad.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(b), `<user id="`+user+`"`) {
					firstErr.CompareAndSwap(nil, fmt.Errorf("user %s: HTTP %d: %.200s", user, resp.StatusCode, b))
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "warmed %d users in %s\n", *users, time.Since(start).Round(time.Millisecond))
	if n := bad.Load(); n > 0 {
		return fmt.Errorf("%d lookups failed (first error: %v)", n, firstErr.Load())
	}
	return nil
}

// fixed serves the baseline: a minimal net/http server answering every
// request with the same body of the given size, after reading the request
// body as fsplane does.
func fixed(args []string) error {
	fs := flag.NewFlagSet("fixed", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8002", "address")
	size := fs.Int("size", 800, "response body size in bytes")
	_ = fs.Parse(args)
	body := []byte(strings.Repeat("x", *size))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	err := srv.ListenAndServe()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func handler(args []string) error {
	fs := flag.NewFlagSet("handler", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8003", "address")
	creds := fs.String("auth", "", "Basic user:password")
	_ = fs.Parse(args)
	user, pass, _ := strings.Cut(*creds, ":")
	kr, err := secrets.Parse(strings.Split(os.Getenv("FSPLANE_FERNET_KEYS"), ",")...)
	if err != nil {
		return fmt.Errorf("FSPLANE_FERNET_KEYS: %w", err)
	}
	s, err := models.Open(context.Background(), models.Config{DatabaseURL: os.Getenv("DATABASE_URL"), Keys: kr})
	if err != nil {
		return err
	}
	defer s.Close()
	h := xmlcurl.New(xmlcurl.Options{Store: s, BasicUser: user, BasicPassword: pass})
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	err = srv.ListenAndServe()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
