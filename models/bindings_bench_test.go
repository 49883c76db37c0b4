package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fsplane/fsplane/models"
	"github.com/fsplane/fsplane/models/modelstest"
)

// BenchmarkWriteBindings: the registrar's flush, one contact upserted per
// AOR (200 per transaction), on SQLite.
func BenchmarkWriteBindings(b *testing.B) {
	s := modelstest.Open(b, "sqlite", modelstest.Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	const batch = 200
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		ups := make([]models.Binding, 0, batch)
		for j := 0; j < batch; j++ {
			aor := fmt.Sprintf("u%05d@bench.example", (i+j)%10000)
			ups = append(ups, models.Binding{AOR: aor, Contact: "sip:" + aor + ":5060", QMilli: 1000, Expires: exp, CallID: "c", CSeq: int64(i), Received: "127.0.0.1:5060", Transport: "udp", RegisteredAt: exp.Add(time.Duration(i) * time.Millisecond)})
		}
		if err := s.WriteBindings(ctx, "bench", ups, nil); err != nil {
			b.Fatal(err)
		}
	}
}
