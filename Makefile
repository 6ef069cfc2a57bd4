# sbx — see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO      ?= go
BIN     ?= bin/sbx
PKGS    := ./cmd/... ./idmap/... ./policy/... ./userns/... ./sandbox/... ./cgroup/... ./tests/vm/...
FUZZTIME ?= 10s

.PHONY: help build test test-unit test-integration vet fuzz bench demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

# Static, with cgo for libseccomp (libseccomp-dev): no loader, no
# library lookup on the start path, and the same binary runs in the VM.
build: ## build bin/sbx
	CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo -ldflags '-linkmode=external -extldflags=-static' -o $(BIN) ./cmd/sbx

vet: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd idmap policy userns sandbox cgroup tests)" || { gofmt -l cmd idmap policy userns sandbox cgroup tests; exit 1; }

test: vet test-unit test-integration ## everything this machine can run

test-unit: ## pure unit tests (any user)
	$(GO) test -count=1 $(PKGS)

test-integration: build ## drive bin/sbx as an unprivileged user (as root: creates user sbxtest)
	SBX_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v ./tests/

fuzz: ## run every fuzz target for FUZZTIME
	@for pkg in ./idmap ./policy ./cgroup ./sandbox; do \
	  for t in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    echo "fuzz $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

bench: build ## time sbx against bubblewrap and unshare (as an unprivileged user)
	$(GO) run ./tests/bench -n 200 -sbx $(CURDIR)/$(BIN)

demo: build ## build and run a sample sandbox
	./$(BIN) run -- sh -c 'echo "inside: uid=$$(id -u) pid=$$$$ host=$$(hostname)"; ls /; cat /proc/self/status | grep -E "^(Cap|NoNewPrivs)"'

.PHONY: test-vm vm-shell
test-vm: ## the integration tests in a QEMU VM: systemd, cgroup v2 controllers, a login session (root builds the cache once)
	$(GO) build -o bin/sbx-vm ./tests/vm
	./bin/sbx-vm -go $(GO)

vm-shell: ## run CMD in the test VM as sbxtest (VM_ROOT=1: as root), e.g. make vm-shell CMD='systemctl --user status'
	$(GO) build -o bin/sbx-vm ./tests/vm
	./bin/sbx-vm -go $(GO) $(if $(VM_ROOT),-root) -cmd '$(subst ','\'',$(or $(value CMD),id; systemctl --user is-system-running; cat /proc/self/cgroup))'

clean:
	rm -rf bin
