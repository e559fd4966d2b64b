#!/usr/bin/env bash
# Build the local-cluster binaries from their official Go modules, once per version set.
#
#   hack/cluster/build.sh          build what is missing, print the bin directory on the last line
#   hack/cluster/build.sh flux     the same for Flux (only `make bench` asks for it), its own directory
#   hack/cluster/build.sh gitea|alertmanager|nats-server
#                                  one provider test's server (built on demand by its test fixture,
#                                  never by `make demo` or the cluster), in $DEPLOYBELL_CACHE/test-tools
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

# One Flux controller in a tool module of its own (one shared module fails: the controllers
# disagree on shared dependency versions). It requires the controller and its /api module at the
# same version, keeps the controller's `replace`s other than ./api, and its go.sum: some of their
# dependencies are missing from the checksum database here, so only the upstream go.sum can vouch
# for them. `go mod tidy` would trip over test-only dependencies, hence `go build -mod=mod`.
build_flux_controller() { # name version
  local name="$1" version="$2" module="github.com/fluxcd/$1"
  local dir="$work/$name" upstream
  upstream="$(go mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [[ -n "$upstream" && -f "$upstream/go.mod" ]] || { echo "cannot download $module@$version" >&2; return 1; }
  mkdir -p "$cache_root/$flux_key/crds" "$dir"
  cp -f "$upstream"/config/crd/bases/*.yaml "$cache_root/$flux_key/crds/"
  chmod u+w "$cache_root/$flux_key/crds/"*.yaml
  have "$name" && return 0
  {
    printf 'module deploybell.local/flux/%s\n\ngo %s\n\n' "$name" "$(sed -n 's/^go //p' "$upstream/go.mod")"
    printf 'require (\n\t%s %s\n\t%s/api %s\n)\n\n' "$module" "$version" "$module" "$version"
    # Every replace directive except the one pointing at ./api, single-line or in a block.
    awk '
      /^replace \($/ { block = 1; next }
      block && /^\)/ { block = 0; next }
      block { if ($0 !~ /=> \.\//) print "replace " $0; next }
      /^replace / && $0 !~ /=> \.\// { print }
    ' "$upstream/go.mod" | sed 's/^replace[[:space:]]*/replace /'
    printf '\ntool %s\n' "$module"
  } >"$dir/go.mod"
  cp -f "$upstream/go.sum" "$dir/go.sum"
  chmod u+w "$dir/go.sum"
  step "flux $name $version: compiling"
  (cd "$dir" && go_build_with_progress "$name" go build -mod=mod -v -trimpath -ldflags "-s -w" -o "$bin/$name" "$module")
}

# A git-over-HTTP server on 127.0.0.1 (a free port) for the bench's GitRepository: fluxcd/pkg's
# gittestserver with a five-line main. Pushes create repositories (AutoCreate).
build_gitserver() {
  have gitserver && return 0
  step "gittestserver $GITTESTSERVER_VERSION: building"
  local dir="$work/gitserver"
  mkdir -p "$dir"
  printf 'module deploybell.local/flux/gitserver\n\ngo 1.25.0\n\nrequire github.com/fluxcd/pkg/gittestserver %s\n' \
    "$GITTESTSERVER_VERSION" >"$dir/go.mod"
  cat >"$dir/main.go" <<'EOF'
// Command gitserver serves the bare repositories under -root over HTTP on a free loopback port
// and prints its URL; a push creates a repository. It stops on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fluxcd/pkg/gittestserver"
)

func main() {
	root := flag.String("root", "", "directory of the bare repositories")
	flag.Parse()
	server := gittestserver.NewGitServer(*root).AutoCreate()
	if err := server.StartHTTP(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(server.HTTPAddress())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.StopHTTP()
}
EOF
  (cd "$dir" && go mod tidy && go_build_with_progress gitserver go build -v -trimpath -ldflags "-s -w" -o "$bin/gitserver" .)
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

# Gitea from its module, as the main module: its go.mod's replace directives hold only then (a
# `tool` wrapper as above would build other dependency versions). Without the bindata tag Gitea
# reads its locales and templates from its work directory: they are kept beside the binary, as
# gitea-<version>.assets. The pure-Go SQLite driver needs no cgo.
build_gitea() { # version
  local version="$1" dir lock src
  dir="$work/gitea-$version"
  mkdir -p "$dir"
  exec {lock}>"$dir.lock"
  flock "$lock"
  if ! have "gitea-$version"; then
    step "gitea $version: downloading its module"
    src="$(go mod download -json "code.gitea.io/gitea@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    rm -rf "$dir/src" && cp -r "$src" "$dir/src" && chmod -R u+w "$dir/src"
    step "gitea $version: building"
    (cd "$dir/src" && go_build_with_progress gitea go build -v -trimpath \
      -tags "sqlite sqlite_unlock_notify" -ldflags "-s -w" -o "$bin/gitea-$version.tmp" .)
    rm -rf "$bin/gitea-$version.assets" && mkdir -p "$bin/gitea-$version.assets"
    cp -r "$dir/src/options" "$dir/src/templates" "$bin/gitea-$version.assets/"
    mv -f "$bin/gitea-$version.tmp" "$bin/gitea-$version"
    rm -rf "$dir/src"
  fi
  ln -sfn "gitea-$version" "$bin/gitea"
  ln -sfn "gitea-$version.assets" "$bin/gitea.assets"
  exec {lock}>&-
}

# Alertmanager embeds its web UI from ui/app/dist, which upstream builds with npm and which the
# module does not ship, so `go build` of the module fails. Build in a copy of the module (its own
# go.mod and go.sum) with a placeholder page there: the API and the server are upstream's.
build_alertmanager() {
  local version="$ALERTMANAGER_VERSION" name=alertmanager
  local dir="$work/$name-$version" lock upstream d
  mkdir -p "$dir"
  exec {lock}>"$dir.lock"
  flock "$lock"
  if ! have "$name-$version"; then
    step "$name $version: building (web UI replaced by a placeholder page)"
    upstream="$(go mod download -json "github.com/prometheus/alertmanager@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    [[ -n "$upstream" && -f "$upstream/go.mod" ]] || { echo "cannot download alertmanager $version" >&2; return 1; }
    rm -rf "$dir/src"
    cp -r "$upstream" "$dir/src"
    chmod -R u+w "$dir/src"
    for d in elm mantine; do
      mkdir -p "$dir/src/ui/app/dist/$d"
      printf '<!doctype html><title>Alertmanager</title><p>No web UI in this test build; use the API.\n' \
        >"$dir/src/ui/app/dist/$d/index.html"
    done
    (cd "$dir/src" && go_build_with_progress "$name" go build -v -trimpath -ldflags "-s -w" \
      -o "$bin/$name-$version.tmp" ./cmd/alertmanager)
    mv -f "$bin/$name-$version.tmp" "$bin/$name-$version"
  fi
  ln -sfn "$name-$version" "$bin/$name"
  exec {lock}>&-
}

# Servers that only a provider test runs, outside the cluster's cache key: a cluster version bump
# does not rebuild them, and the cluster build (make demo, make cluster-up) never builds them.
case "${1:-}" in
  gitea | alertmanager | nats-server)
    bin="$cache_root/test-tools/bin"
    work="$cache_root/test-tools/src"
    mkdir -p "$bin" "$work"
    case "$1" in
      gitea) build_gitea "$GITEA_VERSION" ;;
      alertmanager) build_alertmanager ;;
      nats-server)
        build_versioned_tool nats-server github.com/nats-io/nats-server/v2 "$NATS_SERVER_VERSION" \
          github.com/nats-io/nats-server/v2
        ;;
    esac
    step "$1 ready in $bin"
    echo "$bin"
    exit 0
    ;;
esac

if [[ "${1:-}" == "flux" ]]; then
  flux_key="flux_source-${FLUX_SOURCE_VERSION}_kustomize-${FLUX_KUSTOMIZE_VERSION}_notification-${FLUX_NOTIFICATION_VERSION}_git-${GITTESTSERVER_VERSION}"
  bin="$cache_root/$flux_key/bin"
  work="$cache_root/$flux_key/src"
  mkdir -p "$bin" "$work"
  build_flux_controller source-controller "$FLUX_SOURCE_VERSION"
  build_flux_controller kustomize-controller "$FLUX_KUSTOMIZE_VERSION"
  build_flux_controller notification-controller "$FLUX_NOTIFICATION_VERSION"
  build_gitserver
  step "flux binaries ready in $bin"
  echo "$bin"
  exit 0
fi

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
