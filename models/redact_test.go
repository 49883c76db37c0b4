package models

import (
	"errors"
	"strings"
	"testing"
)

func TestRedactErrHidesTheURLPassword(t *testing.T) {
	dsn := "postgres://fsplane:Db-Pass-123@db.example:5432/fsplane"
	err := redactErr(errors.New(`connect to "postgres://fsplane:Db-Pass-123@db.example" refused`), dsn)
	if strings.Contains(err.Error(), "Db-Pass-123") || !strings.Contains(err.Error(), "xxxxx") {
		t.Fatalf("not redacted: %v", err)
	}
	plain := errors.New("refused")
	if got := redactErr(plain, "host=db user=x"); got != plain {
		t.Fatalf("a key=value DSN without a URL password must pass the error through: %v", got)
	}
	if redactErr(nil, dsn) != nil {
		t.Fatal("nil must stay nil")
	}
}
