# trellis: `make test` installs what the tests need and runs them all.
SHELL := /bin/bash
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PKGS := ./...

.PHONY: test deps lint unit bench quickstart

## test: everything CI runs: lint, then every test with the race detector.
test: deps lint unit

## deps: Go modules (the cluster and browser tests add their own installs).
deps:
	$(GO) mod download

## lint: gofmt, go vet and staticcheck must be clean.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## unit: every Go test, with -race.
unit:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## bench: the performance figures of docs/benchmarks.md.
bench:
	$(GO) run ./cmd/trellis-bench

## quickstart: the embedded default, no cluster needed.
quickstart:
	$(GO) run ./examples/quickstart dags test etl
