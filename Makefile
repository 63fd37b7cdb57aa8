# Run `make help` for the list of targets.
GO ?= go
# Tests use the local PostgreSQL and Redis; override with TEST_DATABASE_URL / TEST_REDIS_URL.
TEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: help services test chaos lint bench demo build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-9s %s\n", $$1, $$2}'

build: ## build bin/nurture
	$(GO) build -o bin/nurture ./cmd/nurture

services: ## make sure PostgreSQL and Redis run locally: install or start them if needed, and the tests' DKIM verifier (scripts/services.sh)
	bash scripts/services.sh

test: services ## run every test against the local PostgreSQL, Redis and an in-process SMTP server
	$(GO) test $(TEST_FLAGS) ./...

chaos: services ## fault tests with long outages (PostgreSQL down 5 minutes mid-send, ...)
	NURTURE_CHAOS=1 $(GO) test $(TEST_FLAGS) -run 'Outage|DataLoss|SMTPTrouble' ./internal/worker/ ./internal/scheduler/

lint: ## vet, gofmt and lint the shipped campaigns and templates
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd internal migrations scripts)" || (gofmt -l cmd internal migrations scripts; exit 1)
	$(GO) run ./cmd/nurture lint

bench: services ## run the benchmarks reported in BENCHMARKS.md
	$(GO) run ./cmd/nurture bench

demo: services ## run the demo on the local PostgreSQL and Redis (DEMO_FLAGS="--database-url ... --redis-url ...")
	$(GO) run ./cmd/nurture demo $(DEMO_FLAGS)
