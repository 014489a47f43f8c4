# walnut: `make test` is the one test command; .ci/run runs lint, test, demo.
GO ?= go
PKG := github.com/walnut-pg/walnut
# A clone's build says its version and commit; without them (go install,
# a tarball) walnut reads its build info instead (commands/version.go).
VERSION ?= $(shell scripts/version.sh 2>/dev/null)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -X $(PKG)/commands.version=$(VERSION) -X $(PKG)/commands.commit=$(COMMIT)
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build release deb setup test trials demo lint bench bench-go bench-tools bench-status bench-delta fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/walnut .

# Static, reproducible binaries for linux amd64 and arm64, their .deb
# packages and SHA256SUMS, in dist/ (scripts/release.sh says how).
release:
	OUT=dist ARCHES="amd64 arm64" DEB=1 scripts/release.sh

# The .deb for this machine's architecture, in dist/.
deb:
	OUT=dist ARCHES="$$($(GO) env GOARCH)" DEB=1 scripts/release.sh

setup:
	scripts/setup.sh

test: setup
	$(GO) test -count=1 -timeout 45m ./...

# The crash, concurrency and fault trials alone (e2e/trials_*_test.go),
# TRIALS seeded trials per command; make test runs them with 5. Each test
# logs its seed: WALNUT_TRIAL_SEED=N replays one.
TRIALS ?= 25
trials: setup
	WALNUT_TRIALS=$(TRIALS) $(GO) test -count=1 -timeout 60m -v -run '^Test(Trials|Fault)' ./e2e/

# Every native fuzz target for FUZZTIME each; CI runs 15s each.
FUZZTIME ?= 15s
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

demo: setup build
	bash scripts/demo.sh

lint:
	@files="$$(gofmt -l .)"; if [ -n "$$files" ]; then \
		echo "gofmt -l: these files need gofmt -w:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	@test -x "$(STATICCHECK)" || { echo "$(STATICCHECK) missing: run scripts/setup.sh"; exit 1; }
	$(STATICCHECK) ./...
	cd packaging/mkdeb && $(GO) vet ./... && $(STATICCHECK) ./...

# Performance is measured here, never asserted in timed tests. bench-go:
# the hot paths in-process; bench-tools: walnut, pg_basebackup, WAL-G (when
# bench/build-walg.sh built it) and pgBackRest on one pgbench cluster and a
# text table (BENCH_SCALE=100, or BENCH_SCALES="50 100 200");
# bench-status: walnut status's wall time and peak RSS on 100,000 WAL
# objects (BENCH_MINIO=1 adds a MinIO archive).
bench: bench-go bench-tools bench-status

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-tools:
	bash bench/run.sh

bench-status:
	bash bench/status.sh

# A delta backup against its full base (bench/delta.sh says what it runs).
bench-delta:
	bash bench/delta.sh

clean:
	rm -rf bin dist
