#!/usr/bin/env bash
# Installs what the tests need when it is missing; safe to run again (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
PROMTOOL_VERSION=v0.316.0
export PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"

# Debian and npm packages: mostly download and unpack, so they run beside the Go builds below (CPU-bound)
# instead of before them; the script waits for them, and fails with them, at its end.
install_packages() {
  need_apt=()
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
  # Sentinel for the registry's HA tests (test/support/redis-ha.ts); Cluster mode is in redis-server itself.
  command -v redis-sentinel >/dev/null 2>&1 || need_apt+=(redis-sentinel)
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "setup: installing ${need_apt[*]} from Debian"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    echo "setup: Debian packages installed (${SECONDS} s)"
  fi

  # npm packages (the package's `prepare` builds dist/).
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f dist/app/cli.js ]; then
    echo "setup: npm ci"
    npm ci --no-audit --no-fund
    echo "setup: npm packages installed (${SECONDS} s)"
  fi
}
install_packages &
packages_pid=$!

# Go builds: -s -w leaves out the symbol table and DWARF (a shorter link; `go version -m` still reads the
# module versions, which live in the build info). The three run at the same time (below): each spends its first
# tens of seconds downloading modules, which overlaps the others' compiles (the compiles share the 2 cores either way).

# `go install` builds report only "v3.22" from `helm version`; the module version is in the binary.
build_helm() {
  if ! command -v helm >/dev/null 2>&1 || ! go version -m "$(command -v helm)" 2>/dev/null | grep -Eq "helm\.sh/helm/v3[[:space:]]+${HELM_VERSION}[[:space:]]"; then
    echo "setup: building helm ${HELM_VERSION} with go install (one time)"
    go install -ldflags="-s -w" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
    echo "setup: helm built (${SECONDS} s)"
  fi
}

# promtool checks the /metrics output of every role, the chart's alerting rules (and their unit tests)
# and the dashboard's PromQL; like helm, the module version is read from the binary.
build_promtool() {
  if ! command -v promtool >/dev/null 2>&1 || ! go version -m "$(command -v promtool)" 2>/dev/null | grep -Eq "github\.com/prometheus/prometheus[[:space:]]+${PROMTOOL_VERSION}[[:space:]]"; then
    echo "setup: building promtool ${PROMTOOL_VERSION} with go install (one time)"
    # remove_all_sd leaves out every service-discovery plugin (AWS, Azure, GCE, Kubernetes, ...): the tests never run
    # `promtool check service-discovery`, and without them the build is a fraction of the compile.
    go install -tags remove_all_sd -ldflags="-s -w" "github.com/prometheus/prometheus/cmd/promtool@${PROMTOOL_VERSION}"
    echo "setup: promtool built (${SECONDS} s)"
  fi
}

# A real Kubernetes control plane for the tests (test/kube pins it): etcd, kube-apiserver and
# kube-controller-manager, built once into a cache shared by every clone; the Go build cache makes
# a rebuild after a version bump incremental.
build_kube() {
  KUBE_VERSION=v1.37.2
  KUBE_BIN_DIR="${RTC_KUBE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rtc-edge/kube-${KUBE_VERSION}}"
  kube_missing() { [ ! -x "$KUBE_BIN_DIR/kube-apiserver" ] || [ ! -x "$KUBE_BIN_DIR/kube-controller-manager" ] || [ ! -x "$KUBE_BIN_DIR/etcd" ]; }
  if kube_missing; then
    # Several clones may run setup at once: one builds, the others wait for it (flock) instead of
    # compiling the same graph in parallel; each build writes a private dir and moves finished binaries in.
    mkdir -p "$KUBE_BIN_DIR"
    exec 9>"$KUBE_BIN_DIR/.build.lock"
    flock -n 9 || { echo "setup: waiting for the kube control plane build another setup run started"; flock 9; }
    if kube_missing; then
      echo "setup: building kube-apiserver, kube-controller-manager and etcd ${KUBE_VERSION} (a few minutes the first time)"
      build_dir="$(mktemp -d "$KUBE_BIN_DIR/.build.XXXXXX")"
      minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
      ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
      (cd test/kube && go build -trimpath -ldflags "$ldflags" -o "$build_dir/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager go.etcd.io/etcd/server/v3)
      mv "$build_dir/server" "$KUBE_BIN_DIR/etcd"
      mv "$build_dir/kube-apiserver" "$build_dir/kube-controller-manager" "$KUBE_BIN_DIR/"
      rmdir "$build_dir"
      echo "setup: kube control plane built (${SECONDS} s)"
    fi
    exec 9>&-
  fi
}

build_helm & helm_pid=$!
build_promtool & promtool_pid=$!
build_kube & kube_pid=$!
wait "$helm_pid" || { echo "setup: building helm failed (its output is above)" >&2; exit 1; }
wait "$promtool_pid" || { echo "setup: building promtool failed (its output is above)" >&2; exit 1; }
wait "$kube_pid" || { echo "setup: building the kube control plane failed (its output is above)" >&2; exit 1; }

wait "$packages_pid" || { echo "setup: installing the Debian or npm packages failed (its output is above)" >&2; exit 1; }
