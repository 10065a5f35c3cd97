#!/usr/bin/env bash
# Every test Outrider has, on a fresh machine: installs what the tests need
# (Debian's prometheus package for prometheus and promtool, prometheus-alertmanager
# for the alert delivery test, openjdk-17-jdk-headless for the JVM heap test,
# chromium for the page
# test, kubernetes-validate from PyPI for the manifests, gunicorn from PyPI for the
# pre-fork capacity test), then format, lint, tests, and the deploy/ checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need+=(prometheus)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
{ command -v java && command -v jstat; } >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${need[*]} from Debian's packages"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# tests/capacity.rs runs a real gunicorn (it installs it the same way if missing).
python3 -c 'import gunicorn' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check --break-system-packages gunicorn

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# In CI the kernel tests (tests/cgroups.rs: real v1 cgroups, OOM kills, throttling)
# must run, not say why they cannot and pass.
if [ "${CI:-}" = "true" ]; then export OUTRIDER_REQUIRE_CGROUPS=1; fi
cargo test --all-targets --locked

# deploy/: manifests rendered and validated offline, rules, dashboard (a few seconds).
python3 -c 'import kubernetes_validate, yaml' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check kubernetes-validate pyyaml
if command -v kubectl >/dev/null 2>&1; then
  bash scripts/check-deploy.sh
else
  # kubectl ships with this project's machine image; Debian's own is too old for
  # the kustomizations. tests/deploy.rs still checks the rules and dashboard.
  echo "check-deploy: SKIPPED, no kubectl to render the kustomizations"
fi

# fuzz/: every target built (nightly, sanitizers) and run on a fixed seed for a few
# thousand inputs, so none rots unbuilt. Their long runs are `cargo +nightly fuzz run
# <target> -- -max_total_time=N` (fuzz/README.md).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  bash scripts/fuzz_smoke.sh
else
  echo "fuzz smoke: SKIPPED, no nightly toolchain (rustup toolchain install nightly)"
fi
