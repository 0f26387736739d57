# zmqauth: every entry point. `make test` and `make demo` work on a fresh
# Debian machine: they install what they need first (hack/deps.sh).

GO            ?= go
CONTROLLER_GEN ?= $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
TEST_TIMEOUT  ?= 25m
export KUBEBUILDER_ASSETS := $(CURDIR)/bin/k8s
# The AVX2 Salsa20 for CURVE messages (zmtp/curve/internal/salsa20) is written
# with the experimental simd/archsimd package, compiled only with this
# experiment; exported so that every go command and the binaries the tests
# and benchmarks build get it. Without it the code falls back to x/crypto
# (`make GOEXPERIMENT= ...` builds that way).
export GOEXPERIMENT := simd

.PHONY: node-deps test-node all build deps test unit vet fmt-check manifests manifests-check fuzz bench demo dev-up dev-down clean

all: build

## build: the one binary (manager, sidecar, keygen, tools) into bin/zmqauth
build:
	$(GO) build -o bin/zmqauth ./cmd/zmqauth

## deps: libzmq, pyzmq and the envtest control plane (once per machine)
deps:
	hack/deps.sh

## test: everything a user needs to trust the project (unit, envtest, libzmq interop);
## the CURVE packages run a second time without GOEXPERIMENT=simd, to test the fallback
test: deps vet fmt-check manifests-check
	ZMQAUTH_REQUIRE_DEPS=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	GOEXPERIMENT= $(GO) test -count=1 ./zmtp/curve/...
	$(MAKE) test-node

## node-deps: containerd, runc, CNI plugins from Debian; kubelet, node components, CoreDNS from Go modules (once per machine)
node-deps: deps
	@if [ "$$(id -u)" -eq 0 ]; then hack/node-deps.sh >/dev/null; else echo "node-deps: not root, a node cannot run here; skipped"; fi

## test-node: the end-to-end suite on a real one-node cluster (pods under a kubelet); alone, after the
## other tests, so its timings do not share the CPUs; skips with the reason where a node cannot run
test-node: node-deps
	ZMQAUTH_NODE_E2E=1 $(GO) test -count=1 -timeout 15m -v ./test/node/

## unit: the tests without installing anything (interop and envtest tests skip when their parts are missing)
unit:
	$(GO) test -count=1 ./...
	GOEXPERIMENT= $(GO) test -count=1 ./zmtp/curve/...

vet:
	$(GO) vet ./...
	GOEXPERIMENT= $(GO) vet ./zmtp/curve/...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: run every fuzz target for FUZZTIME each (seeds always run in `make test`)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: side-by-side benchmarks against libzmq 4.3, and the operator at scale on the local control plane, in one run; tables to stdout and bench/results.md
BENCHFLAGS ?=
bench: deps
	$(GO) run ./bench/cmd/benchall -command 'make bench$(if $(BENCHFLAGS), BENCHFLAGS="$(BENCHFLAGS)")' $(BENCHFLAGS)

## demo: the main job on a one-node cluster with a real kubelet where a node can run (root; node-deps
## installs it): examples/kubernetes applied, then torn down; elsewhere, after one line saying why, on
## the embedded local control plane. Reuses what `make dev-up` runs. (node-deps runs with its stdout
## hidden: hack/demo says itself why a node cannot run, in one line.)
demo: deps build
	@$(MAKE) --no-print-directory node-deps >/dev/null
	$(GO) run ./hack/demo

## dev-up: keep a cluster running in the background (kubeconfig: bin/dev/kubeconfig): a one-node
## cluster with zmqauth installed where a node can run, else the embedded local control plane
dev-up: deps
	@$(MAKE) --no-print-directory node-deps >/dev/null
	@$(GO) build -o bin/devcluster ./hack/devcluster && bin/devcluster up

## dev-down: stop what dev-up started (a node is torn down completely)
dev-down:
	@if [ -f bin/dev/pid ]; then [ -x bin/devcluster ] || $(GO) build -o bin/devcluster ./hack/devcluster; bin/devcluster down; fi

## manifests: regenerate deepcopy, CRDs and RBAC from the kubebuilder markers
manifests:
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=zmqauth-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) webhook paths=./controllers/... output:webhook:artifacts:config=config/webhook

## manifests-check: fail when generated files are stale
manifests-check: manifests
	@git diff --exit-code -- api config/crd config/rbac config/webhook || { echo "generated files are stale: run 'make manifests' and commit"; exit 1; }

clean:
	rm -rf bin
