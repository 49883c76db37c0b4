package registrar

import (
	"fmt"
	"testing"
	"time"
)

// The replay guard refuses a lower or repeated nc, forgets counts older
// than the nonce lifetime, and holds at most maxNonceCounts, forgetting
// the oldest first.
func TestNonceCountsForget(t *testing.T) {
	defer func(n int) { maxNonceCounts = n }(maxNonceCounts)
	maxNonceCounts = 100
	var n nonceCounts
	t0 := time.Unix(1_700_000_000, 0)
	ttl := time.Minute
	if !n.fresh("n0", "u", 1, txn{callID: "a", cseq: 1, method: "REGISTER"}, t0, ttl) || n.fresh("n0", "u", 1, txn{callID: "b", cseq: 1, method: "REGISTER"}, t0, ttl) || !n.fresh("n0", "u", 1, txn{callID: "a", cseq: 1, method: "REGISTER"}, t0, ttl) {
		t.Fatal("nc 1 again: refused for another request, accepted for the same (a retransmission)")
	}
	if n.fresh("n0", "u", 1, txn{callID: "a", cseq: 1, method: "CANCEL"}, t0, ttl) {
		t.Fatal("nc 1 again with another method (a CANCEL of the same CSeq number) was accepted")
	}
	if !n.fresh("n0", "u", 2, txn{callID: "c", cseq: 1, method: "REGISTER"}, t0.Add(time.Second), ttl) || n.fresh("n0", "u", 1, txn{callID: "d", cseq: 1, method: "REGISTER"}, t0.Add(time.Second), ttl) {
		t.Fatal("nc 2 must pass and nc 1 then fail")
	}
	for i := 1; i <= 150; i++ {
		n.fresh(fmt.Sprintf("n%d", i), "u", 1, txn{callID: "x", cseq: 1, method: "REGISTER"}, t0.Add(2*time.Second), ttl)
	}
	if len(n.last) != maxNonceCounts {
		t.Fatalf("%d counts held, want the cap %d", len(n.last), maxNonceCounts)
	}
	if _, ok := n.last[keyOf("n150", "u")]; !ok {
		t.Fatal("the newest count was forgotten")
	}
	if _, ok := n.last[keyOf("n0", "u")]; ok {
		t.Fatal("the oldest count is still held beyond the cap")
	}
	// Past the lifetime, one write forgets all the older ones.
	n.fresh("late", "u", 1, txn{callID: "x", cseq: 1, method: "REGISTER"}, t0.Add(2*time.Second+ttl+time.Second), ttl)
	if len(n.last) != 1 {
		t.Fatalf("%d counts held after the lifetime, want 1", len(n.last))
	}
	if len(n.order)-n.head != 1 {
		t.Fatalf("order holds %d entries for 1 count", len(n.order)-n.head)
	}
}

// BenchmarkNonceCountsFull: one authenticated registration's replay-guard
// write once maxNonceCounts are held within a nonce lifetime (it scanned
// the whole map per write before: about a millisecond).
func BenchmarkNonceCountsFull(b *testing.B) {
	var n nonceCounts
	t0 := time.Unix(1_700_000_000, 0)
	keys := make([]string, maxNonceCounts+b.N)
	for i := range keys {
		keys[i] = fmt.Sprintf("nonce-%d", i)
	}
	for i := 0; i < maxNonceCounts; i++ {
		n.fresh(keys[i], "u", 1, txn{callID: "x", cseq: 1, method: "REGISTER"}, t0, time.Hour)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.fresh(keys[maxNonceCounts+i], "u", 1, txn{callID: "x", cseq: 1, method: "REGISTER"}, t0.Add(time.Second), time.Hour)
	}
}

// One client counting up with one nonce grows nothing but its count; the
// count is still forgotten a lifetime after the nonce's first use.
func TestNonceCountsOneNonceManyRequests(t *testing.T) {
	var n nonceCounts
	t0 := time.Unix(1_700_000_000, 0)
	ttl := time.Minute
	for nc := uint64(1); nc <= 100_000; nc++ {
		if !n.fresh("n0", "u", nc, txn{callID: "a", cseq: uint32(nc), method: "REGISTER"}, t0.Add(time.Duration(nc)*time.Microsecond), ttl) {
			t.Fatalf("nc %d refused", nc)
		}
	}
	if len(n.last) != 1 || len(n.order)-n.head != 1 {
		t.Fatalf("%d counts, %d in order; want 1 and 1", len(n.last), len(n.order)-n.head)
	}
	if n.fresh("n0", "u", 99_999, txn{callID: "a", cseq: 1, method: "REGISTER"}, t0.Add(time.Second), ttl) {
		t.Fatal("a lower nc accepted")
	}
	n.fresh("n1", "u", 1, txn{callID: "b", cseq: 1, method: "REGISTER"}, t0.Add(ttl+time.Second), ttl)
	if _, held := n.last[keyOf("n0", "u")]; held {
		t.Fatal("n0's count outlived a lifetime from its first use")
	}
}
