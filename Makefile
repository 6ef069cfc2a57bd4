# sbx — see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO      ?= go
BIN     ?= bin/sbx
PKGS    := ./cmd/... ./idmap/... ./policy/... ./userns/... ./sandbox/...
FUZZTIME ?= 10s

.PHONY: help build test test-unit test-integration vet fuzz bench demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

build: ## build bin/sbx
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/sbx

vet: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd idmap policy userns sandbox tests)" || { gofmt -l cmd idmap policy userns sandbox tests; exit 1; }

test: vet test-unit test-integration ## everything this machine can run

test-unit: ## pure unit tests (any user)
	$(GO) test -count=1 $(PKGS)

test-integration: build ## drive bin/sbx as an unprivileged user (as root: creates user sbxtest)
	SBX_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v ./tests/

fuzz: ## run every fuzz target for FUZZTIME
	@for pkg in ./idmap ./policy; do \
	  for t in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    echo "fuzz $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

bench: build ## time sbx against bubblewrap and unshare (as an unprivileged user)
	$(GO) run ./tests/bench -n 200 -sbx $(CURDIR)/$(BIN)

demo: build ## build and run a sample sandbox
	./$(BIN) run -- sh -c 'echo "inside: uid=$$(id -u) pid=$$$$ host=$$(hostname)"; ls /; cat /proc/self/status | grep -E "^(Cap|NoNewPrivs)"'

clean:
	rm -rf bin
