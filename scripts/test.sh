#!/usr/bin/env bash
# The test command: installs what is missing, type-checks, then runs every *.test.ts with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"
npx tsc -p tsconfig.check.json
# The k6 scripts against k6's own type definitions only (no DOM, no Node): an API k6 lacks fails here.
npx tsc -p loadtest/k6/tsconfig.json
shopt -s globstar nullglob
if [ "$#" -gt 0 ]; then files=("$@"); else files=(src/**/*.test.ts app/**/*.test.ts socket/**/*.test.ts gateway/**/*.test.ts scaler/**/*.test.ts examples/**/*.test.ts test/**/*.test.ts); fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec "${files[@]}"
