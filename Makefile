GO ?= go
GOFLAGS_TEST ?= -race -count=1 -timeout 12m

.PHONY: all build test test-short vet fmt bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/fsplane ./cmd/fsplane

# Installs missing test peers (as root), starts a throwaway PostgreSQL and
# runs every test with the race detector.
test:
	./scripts/test-peers.sh
	./scripts/pg-throwaway.sh $(GO) test $(GOFLAGS_TEST) ./...

# Unit tests only: SQLite half, no peers.
test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

fmt:
	gofmt -w .

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
