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
run() { node --import tsx --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec "$@"; }
if [ "$#" -gt 0 ]; then run "$@"; exit; fi

# Two lanes at once, each one file at a time: the files that start a real control plane (half the suite's time,
# most of it waiting for the controller-manager and the kubelet) beside all the others. Each line is prefixed with
# its lane; each lane ends with its own summary, and the command fails if either lane does.
# A control-plane file is one that imports test/support/kube/, so a new one joins its lane without being listed.
mapfile -t kube < <(grep -l -- "from './support/kube/" test/*.test.ts)
rest=()
for f in src/**/*.test.ts app/**/*.test.ts socket/**/*.test.ts gateway/**/*.test.ts scaler/**/*.test.ts examples/**/*.test.ts test/**/*.test.ts; do
  case " ${kube[*]} " in *" $f "*) ;; *) rest+=("$f") ;; esac
done
start=$SECONDS
(run "${kube[@]}" 2>&1 | sed -u 's/^/[kube] /') & kube_pid=$!
(run "${rest[@]}" 2>&1 | sed -u 's/^/[main] /') & rest_pid=$!
status=0
wait "$rest_pid" || status=1
wait "$kube_pid" || status=1
echo "test: both lanes done in $((SECONDS - start)) s ($([ "$status" -eq 0 ] && echo 'all passed' || echo 'a lane FAILED: search for ✖ above'))"
exit "$status"
