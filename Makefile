# gitops-ci: the two set-up commands are `make demo` and `make test`. Both install what is missing
# (Debian packages, npm ci), build the CLI, start the services they need and stop them afterwards.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages the tests, the demo and the benches use (all from Debian 12's archive)
APT_PKGS := git curl openssl ca-certificates docker.io docker-registry busybox-static apache2-utils openssh-server openssh-client rsync iproute2 procps
# binaries that say the packages above are there
APT_BINS := git curl openssl dockerd docker-registry busybox htpasswd sshd ssh rsync ip pgrep

.PHONY: help deps apt npm build test demo bench lint typecheck clean

help:
	@echo "make demo   run the main job end to end on an embedded default (local git remote, registry, Argo CD stand-in)"
	@echo "make test   run the whole test suite with real services"
	@echo "make bench  run the benchmarks (bench/*.ts)"
	@echo "make lint   type-check"

deps: apt npm

apt:
	@missing=""; for b in $(APT_BINS); do command -v $$b >/dev/null 2>&1 || [ -x /usr/sbin/$$b ] || missing="$$missing $$b"; done; \
	if ! command -v kubectl >/dev/null 2>&1 && ! command -v kustomize >/dev/null 2>&1; then echo "note: neither kubectl nor kustomize on PATH; --render and the Argo CD double need one" >&2; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (missing:$$missing)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	fi

npm: node_modules/.package-lock.json

node_modules/.package-lock.json: package-lock.json package.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: npm
	node scripts/build.mjs

typecheck lint: npm
	npx tsc -p . --noEmit

test: deps build
	node scripts/run-tests.mjs

demo: deps build
	npx tsx scripts/demo.ts

bench: deps build
	@for b in bench/set-image.ts bench/bump.ts bench/latency.ts bench/image.ts bench/argocd-wait.ts bench/startup.ts; do echo "== $$b"; npx tsx $$b || exit 1; done
	node scripts/readme-bench.mjs

clean:
	rm -rf dist .gitlab-ci-local
