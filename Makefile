# eka-webhook-edge — `make test` installs what it needs (idempotently) and runs every suite.
SHELL := /bin/bash
.DEFAULT_GOAL := test
export CARGO_TERM_COLOR ?= never

WASM_TARGET := wasm32-unknown-unknown
# Every suite appends its runner's output here; `make test` ends with the totals.
TEST_LOG := target/test-results.log

.PHONY: test deps lint unit wasm bench-core dev

## test: everything CI runs (.ci/run calls this).
test: deps lint unit wasm
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "summary: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' $(TEST_LOG)

## deps: toolchain pieces, installed only when missing.
deps:
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
	@rustup target list --installed 2>/dev/null | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)
	@if [ -f package.json ]; then npm install --no-audit --no-fund; fi

## lint: formatting and clippy for native and both wasm features.
lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) --features worker -- -D warnings
	cargo clippy --target $(WASM_TARGET) --features node -- -D warnings

## unit: the core's tests (native; the canonicaliser is also checked against `node`).
unit:
	@mkdir -p target && : > $(TEST_LOG)
	set -o pipefail; cargo test 2>&1 | tee -a $(TEST_LOG)

## wasm: the core compiles for the Worker and for Node.
wasm:
	cargo build --target $(WASM_TARGET) --features worker
	cargo build --target $(WASM_TARGET) --features node

## bench-core: verify time for a 2 KB body, raw and re-serialisation paths.
bench-core:
	cargo run --release --example verify_bench

## dev: the Worker under wrangler dev — arrives with the Worker issue.
dev:
	@echo "make dev arrives with the Cloudflare Worker (issue 3); today only the core exists: run make test." >&2
	@exit 1
