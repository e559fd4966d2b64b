#!/usr/bin/env bash
# Build the local-cluster binaries from their official Go modules, once per version set.
#
#   hack/cluster/build.sh          build what is missing, print the bin directory on the last line
#
# Output: $DEPLOYBELL_CACHE/<key>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,
# kubectl,etcd,kwok,helm,promtool}. The key is derived from the cluster's versions in versions.env,
# so a version bump rebuilds; test tools (promtool) carry their version in their file name instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${DEPLOYBELL_CACHE:-$HOME/.cache/deploybell}"
key="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
bin="$cache_root/$key/bin"
work="$cache_root/$key/src"
mkdir -p "$bin" "$work"

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

step() { printf '==> [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

have() {
  local f
  for f in "$@"; do [[ -x "$bin/$f" ]] || return 1; done
}

# go build -v prints each package as it is compiled; show a running count instead of thousands of
# lines, so a cold build visibly progresses without flooding the log.
go_build_with_progress() {
  local label="$1"
  shift
  local n=0 line
  "$@" 2>&1 | while IFS= read -r line; do
    if [[ "$line" == *": "* || "$line" == *"error"* || "$line" == "#"* ]]; then
      printf '%s\n' "$line" >&2
    else
      n=$((n + 1))
      if ((n % 100 == 0)); then printf '    %s: %d packages compiled (last: %s)\n' "$label" "$n" "$line" >&2; fi
    fi
  done
  return "${PIPESTATUS[0]}"
}

build_kubernetes() {
  have kube-apiserver kube-controller-manager kube-scheduler kubectl && return 0
  step "kubernetes $K8S_VERSION: resolving staging modules"
  local dir="$work/kubernetes" staging="${K8S_VERSION/v1./v0.}"
  mkdir -p "$dir"
  local upstream_mod
  upstream_mod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module deploybell.local/cluster/kubernetes"
    echo
    echo "go $(sed -n 's/^go //p' "$upstream_mod")"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # Every k8s.io/<staging> module that upstream maps to ./staging is published at v0.<minor>.<patch>.
    sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$upstream_mod"
    echo
    for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      echo "tool k8s.io/kubernetes/cmd/$c"
    done
  } >"$dir/go.mod"
  step "kubernetes $K8S_VERSION: downloading modules (go mod tidy)"
  (cd "$dir" && go mod tidy)
  step "kubernetes $K8S_VERSION: compiling kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (cold: ~20 min on 2 cores)"
  local ldflags="-s -w"
  local major minor
  major="$(echo "$K8S_VERSION" | sed 's/^v\([0-9]*\)\..*/\1/')"
  minor="$(echo "$K8S_VERSION" | sed 's/^v[0-9]*\.\([0-9]*\)\..*/\1/')"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$dir" && go_build_with_progress kubernetes go build -v -trimpath -ldflags "$ldflags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
}

# A tiny module of our own whose main calls etcdmain.Main, so etcd's gRPC/otel versions are its own.
build_etcd() {
  have etcd && return 0
  step "etcd $ETCD_VERSION: building"
  local dir="$work/etcd"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<EOF
module deploybell.local/cluster/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  cat >"$dir/main.go" <<'EOF'
// Command etcd runs the upstream etcd server main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (cd "$dir" && go mod tidy && go_build_with_progress etcd go build -v -trimpath -ldflags "-s -w" -o "$bin/etcd" .)
}

build_tool() { # name module-path version
  local name="$1" pkg="$2" version="$3" mod="$4"
  have "$name" && return 0
  step "$name $version: building"
  local dir="$work/$name"
  mkdir -p "$dir"
  printf 'module deploybell.local/cluster/%s\n\ngo 1.24\n\nrequire %s %s\n\ntool %s\n' \
    "$name" "$mod" "$version" "$pkg" >"$dir/go.mod"
  (cd "$dir" && go mod tidy && go_build_with_progress "$name" go build -v -trimpath -ldflags "-s -w" -o "$bin/$name" "$pkg")
}

# A test tool outside the cache key: built as <name>-<version>, linked as <name>.
build_versioned_tool() { # name package version module [go build tags]
  local name="$1" pkg="$2" version="$3" mod="$4" tags="${5:-}"
  local dir="$work/$name-$version" lock
  mkdir -p "$dir"
  # Several checkouts may share this cache: one builds, the others wait for it.
  exec {lock}>"$dir.lock"
  flock "$lock"
  if ! have "$name-$version"; then
    step "$name $version: building"
    printf 'module deploybell.local/cluster/%s\n\ngo 1.24\n\nrequire %s %s\n\ntool %s\n' \
      "$name" "$mod" "$version" "$pkg" >"$dir/go.mod"
    (cd "$dir" && go mod tidy &&
      go_build_with_progress "$name" go build -v -trimpath -tags "$tags" -ldflags "-s -w" \
        -o "$bin/$name-$version.tmp" "$pkg")
    mv -f "$bin/$name-$version.tmp" "$bin/$name-$version"
  fi
  ln -sfn "$name-$version" "$bin/$name"
  exec {lock}>&-
}

build_kubernetes
build_etcd
build_tool kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" sigs.k8s.io/kwok
build_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" helm.sh/helm/v3
# remove_all_sd: without the service discoveries (cloud SDKs), which checking and testing rules
# never use; the build is a fraction of the full one.
build_versioned_tool promtool github.com/prometheus/prometheus/cmd/promtool "$PROMTOOL_VERSION" \
  github.com/prometheus/prometheus remove_all_sd
# kwok's stock stage definitions ship inside its module; keep a copy beside the binaries.
kwok_dir="$(cd "$work/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
mkdir -p "$cache_root/$key/kwok-stages"
cp -f "$kwok_dir"/kustomize/stage/pod/general/*.yaml "$kwok_dir"/kustomize/stage/node/fast/*.yaml \
  "$cache_root/$key/kwok-stages/" 2>/dev/null || true
step "binaries ready in $bin"
echo "$bin"
