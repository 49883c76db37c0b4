package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// BenchmarkConsoleSessionByHash: what a console request pays for its
// session (no cache: one primary-key read), among 1000 live sessions.
func BenchmarkConsoleSessionByHash(b *testing.B) {
	for _, backend := range modelstest.Backends {
		b.Run(backend, func(b *testing.B) {
			s := modelstest.Open(b, backend, modelstest.Options{})
			ctx := context.Background()
			now := time.Now()
			for i := range 1000 {
				err := s.CreateConsoleSession(ctx, &models.ConsoleSession{IDHash: fmt.Sprintf("%064d", i), TokenHash: "t", CSRF: "c",
					CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleUntil: now.Add(time.Hour)})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.ConsoleSessionByHash(ctx, fmt.Sprintf("%064d", i%1000), now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
