# trellis: `make test` installs what the tests need and runs them all.
#
# As root (CI and the dev machines are), it also installs Debian's Chromium for
# the browser test and brings up the local Kubernetes node of hack/ for the
# end-to-end tests (first time: ~15 min to build the cluster binaries, cached in
# ~/.cache/trellis; then ~20 s), and tears it down afterwards, pass or fail.
# TRELLIS_E2E=0 skips the cluster. Without it, the cluster tests skip with a
# reason, except when CI is set: then they fail. As root it also installs
# Debian's PostgreSQL and starts a throwaway server on loopback (hack/postgres.sh)
# so that the store's conformance suite and the runner's crash, two-scheduler
# and failover tests run on PostgreSQL too; TRELLIS_PG=0 skips it.
SHELL := /bin/bash
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PKGS := ./...
ROOT := $(shell id -u)

.PHONY: test deps lint unit cluster-up cluster-down cluster-loop pg-up pg-down bench quickstart

## test: everything CI runs: lint, then every test with the race detector.
test: deps lint
	@status=0; \
	$(MAKE) --no-print-directory cluster-up || status=$$?; \
	if [ $$status -eq 0 ]; then $(MAKE) --no-print-directory pg-up || status=$$?; fi; \
	if [ $$status -eq 0 ]; then $(MAKE) --no-print-directory unit || status=$$?; fi; \
	$(MAKE) --no-print-directory pg-down || true; \
	$(MAKE) --no-print-directory cluster-down || true; \
	exit $$status

## deps: Go modules; as root, Chromium for the browser test.
deps:
	$(GO) mod download
	@if [ "$(ROOT)" = 0 ]; then hack/install-chromium.sh; else echo "not root: Chromium not installed (browser test skips unless CI)"; fi

## lint: gofmt, go vet and staticcheck must be clean.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## unit: every Go test, with -race (the e2e tests use the cluster when it is up,
## the PostgreSQL variants the server of pg-up when its DSN file is there).
unit:
	TRELLIS_TEST_POSTGRES="$${TRELLIS_TEST_POSTGRES:-$$(cat $${TRELLIS_PG_DIR:-/tmp/trellis-pg}/dsn 2>/dev/null)}" $(GO) test -race -count=1 -timeout 45m $(PKGS)

## cluster-up: the local Kubernetes node for the e2e tests (root only).
cluster-up:
	@if [ "$(ROOT)" != 0 ] || [ "$(TRELLIS_E2E)" = 0 ]; then echo "cluster: skipped (not root, or TRELLIS_E2E=0)"; exit 0; fi; \
	hack/kube-build.sh && hack/kube-up.sh

## cluster-down: stop the local Kubernetes node (only what hack/kube-up.sh started).
cluster-down:
	@if [ "$(ROOT)" = 0 ] && [ "$(TRELLIS_E2E)" != 0 ]; then hack/kube-down.sh; fi

## pg-up / pg-down: the loopback PostgreSQL the PostgreSQL variants run on (root only; TRELLIS_PG=0 skips it).
pg-up:
	@if [ "$(ROOT)" != 0 ] || [ "$(TRELLIS_PG)" = 0 ]; then echo "postgres: skipped (not root, or TRELLIS_PG=0)"; exit 0; fi; \
	hack/postgres.sh up >/dev/null

pg-down:
	@if [ "$(ROOT)" = 0 ] && [ "$(TRELLIS_PG)" != 0 ]; then hack/postgres.sh down; fi

## cluster-loop: kube-up/kube-down 10 times with every core busy, then kube-up twice and kube-down (root only).
cluster-loop:
	hack/kube-loop-test.sh 10

## bench: the performance figures of docs/benchmarks.md.
bench:
	$(GO) run ./cmd/trellis-bench

## quickstart: the embedded default, no cluster needed.
quickstart:
	$(GO) run ./examples/quickstart dags test etl
