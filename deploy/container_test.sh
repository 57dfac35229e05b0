#!/bin/bash
# Builds the image from the repository's Dockerfile with podman, runs its
# convserve-server and checks it from the host: image config (non-root user,
# ports, HEALTHCHECK, environment), the image's own health check, a conv2d and
# the metrics page through the host's convserve-cli, and a graceful exit 0 on
# SIGTERM.
# Usage: container_test.sh CLI_BIN
# Exit 77 (skipped) only where this machine cannot build or run containers:
# not root, or podman/buildah do not work here. Missing tools are a failure.
set -euo pipefail
cli_bin=$(realpath "$1")
repo=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3
image=localhost/convserve:test
build_image=localhost/convserve-build:test
slim=docker.io/library/debian:bookworm-slim
full=docker.io/library/debian:bookworm

work=$(mktemp -d)
ctr="" runner_pid="" server_pid=""
cleanup() {
  # Killing the server lets buildah run finish (and reap its helpers) itself.
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  if [ -n "$runner_pid" ]; then
    for _ in $(seq 50); do kill -0 "$runner_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$runner_pid" 2>/dev/null || true
    wait "$runner_pid" 2>/dev/null || true
  fi
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  # The debootstrap root, unless something is still mounted in it.
  if ! grep -q " $work/" /proc/mounts; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

skip() {
  echo "************************************************************************"
  echo "container_image: SKIPPED: $*"
  echo "************************************************************************"
  exit 77
}
fail() {
  echo "container_image: FAIL: $*"
  if [ -s "$work/server.log" ]; then
    echo "---- server log (buildah run) ----"
    cat "$work/server.log"
  fi
  exit 1
}
now() { date +%s; }

# Tools first: missing ones are a broken setup, not a reason to skip.
for tool in podman buildah debootstrap; do
  command -v "$tool" >/dev/null ||
    fail "$tool is not installed: run scripts/install-deps.sh (it installs podman, buildah and debootstrap)"
done
[ -x "$cli_bin" ] || fail "no convserve-cli at $1"
"$python" -c 'import numpy' 2>/dev/null || fail "$python lacks numpy: run scripts/install-deps.sh"

# The only skip: no privileges for containers on this machine.
[ "$(id -u)" -eq 0 ] || skip "not root (building and running images with podman/buildah here needs root)"
podman info >"$work/probe.log" 2>&1 || skip "podman does not work on this machine: $(tail -3 "$work/probe.log")"
probe=$(buildah from scratch 2>"$work/probe.log") ||
  skip "buildah cannot create containers here: $(tail -3 "$work/probe.log")"
buildah mount "$probe" >/dev/null 2>>"$work/probe.log" && mount_ok=1 || mount_ok=""
buildah umount "$probe" >/dev/null 2>&1 || true
buildah rm "$probe" >/dev/null 2>&1 || true
[ -n "$mount_ok" ] || skip "buildah cannot mount container storage here: $(tail -3 "$work/probe.log")"
unshare --mount true 2>"$work/probe.log" ||
  skip "no mount namespaces here (chroot isolation needs them): $(tail -3 "$work/probe.log")"

# One run at a time on this machine (several checkouts may run their tests at
# once): the runs share the image names and podman's storage.
mkdir -p /run/lock
exec 9>/run/lock/convserve-container-test.lock
flock -w 1200 9 || fail "another container_test.sh has held its lock for 20 minutes"

# Base images. Nothing is pulled from a registry: both stages start from the
# same Debian 12 minbase, made here with debootstrap and stored under the two
# names the Dockerfile uses (the build stage installs what it needs itself).
# Like the official slim image it has no apt lists and no docs, man pages or
# translations. Reused while both names exist.
if ! podman image exists "$slim" || ! podman image exists "$full"; then
  start=$(now)
  echo "making the Debian 12 base image with debootstrap"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; fail "debootstrap failed"; }
  root=$work/rootfs
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$slim" >/dev/null || fail "podman import of the base image failed"
  podman tag "$slim" "$full"
  rm -rf "$root"
  echo "base image made in $(($(now) - start)) s"
fi

# Build. The layer cache makes a re-run fast while the sources are unchanged.
# The build stage's last layer is named too (it is an untagged intermediate
# image otherwise), so that a rebuild can remove the previous build's images
# (with their now unused parent layers) and nothing else.
image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
old_ids="$(image_id "$image") $(image_id "$build_image")"
start=$(now)
podman build --isolation=chroot --pull=never --format docker -t "$image" \
  -f "$repo/Dockerfile" "$repo" >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log"; fail "podman build failed"; }
podman image exists "$image" || { tail -40 "$work/build.log"; fail "podman build made no $image"; }
echo "image built in $(($(now) - start)) s"
# The last layer of the stage "FROM ... AS build" (stages are numbered by their
# place in the Dockerfile, and those the default image does not need, the CUDA
# image's, are skipped).
build_id=$(awk '/^\[[0-9]+\/[0-9]+\] STEP 1\/[0-9]+: FROM /{in_build = ($(NF-1) == "AS" && $NF == "build")}
                in_build && /^--> [0-9a-f]+$/{id=$2} END{print id}' "$work/build.log")
[ -n "$build_id" ] && podman tag "$build_id" "$build_image" 2>/dev/null ||
  echo "note: build stage image not found in the build log; not tagged"
new_ids="$(image_id "$image") $(image_id "$build_image")"
for id in $old_ids; do
  [[ " $new_ids " == *" $id "* ]] || podman rmi "$id" >/dev/null 2>&1 || true
done
for name in "$image" "$build_image"; do
  podman images --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' "$name"
done

# The image's configuration, as stored (Docker format: that is where
# HEALTHCHECK lives; the OCI format has no field for it).
buildah inspect --type image "$image" >"$work/inspect.json"
"$python" - "$work/inspect.json" "$work/config.json" <<'PY' || fail "image configuration: $(cat "$work/config.json")"
import json, sys
inspect = json.load(open(sys.argv[1]))
config = inspect["Docker"]["config"]
json.dump(config, open(sys.argv[2], "w"))
assert "docker" in json.loads(inspect["Manifest"])["mediaType"], "not a Docker-format image"
user = (config.get("User") or "").split(":")[0]
assert user not in ("", "0", "root"), f"image runs as root (User={config.get('User')!r})"
assert user.isdigit(), f"User {user!r} is not numeric (runAsNonRoot cannot check it)"
ports = set(config.get("ExposedPorts") or {})
assert {"50051/tcp", "9090/tcp"} <= ports, f"ExposedPorts {sorted(ports)}"
test = (config.get("Healthcheck") or {}).get("Test") or []
assert test and test[0] in ("CMD", "CMD-SHELL"), f"no HEALTHCHECK (Healthcheck={config.get('Healthcheck')})"
env = dict(e.split("=", 1) for e in config.get("Env") or [])
assert env.get("CONVSERVE_ADDRESS") == "0.0.0.0:50051", f"CONVSERVE_ADDRESS: {env}"
assert env.get("CONVSERVE_METRICS_ADDRESS") == "0.0.0.0:9090", f"CONVSERVE_METRICS_ADDRESS: {env}"
assert config.get("Entrypoint"), "no ENTRYPOINT"
assert config["Labels"].get("org.opencontainers.image.version") == "0.1.0", config["Labels"]
PY
image_user=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["User"].split(":")[0])' "$work/config.json")
# The entrypoint and the health check as NUL-separated argv.
"$python" - "$work/config.json" "$work" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
test = config["Healthcheck"]["Test"]
health = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
for name, argv in (("entrypoint", config["Entrypoint"] + (config.get("Cmd") or [])), ("health", health)):
    open(f"{sys.argv[2]}/{name}.argv", "w").write("".join(a + "\0" for a in argv))
PY
mapfile -d '' entrypoint <"$work/entrypoint.argv"
mapfile -d '' health_cmd <"$work/health.argv"

# Run the server in the image. chroot isolation shares the host's network (and
# PID namespace), so it listens on loopback ports that are free now.
read -r port metrics_port < <("$python" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
ctr=$(buildah from --pull-never "$image") || fail "buildah from $image failed"
# The container's environment, seen by the server and by the health check.
buildah config --env "CONVSERVE_ADDRESS=127.0.0.1:$port" \
  --env "CONVSERVE_METRICS_ADDRESS=127.0.0.1:$metrics_port" \
  --env CONVSERVE_GRACE_PERIOD_S=5 "$ctr"
start=$(now)
buildah run --isolation chroot "$ctr" -- "${entrypoint[@]}" >"$work/server.log" 2>&1 &
runner_pid=$!

# buildah run starts the server under its helpers (buildah-chroot-runtime,
# then buildah-chroot-exec): find it among the runner's descendants ("comm" is
# cut to 15 characters). Other servers may be running on this machine.
descendant_named() {
  ps -e -o pid=,ppid=,comm= | awk -v root="$1" -v name="$2" '
    { parent[$1] = $2; comm[$1] = $3 }
    END { for (p in parent) if (comm[p] == name) {
            for (q = p; q in parent && q != root && q > 1; q = parent[q]) {}
            if (q == root) print p } }'
}
for _ in $(seq 300); do
  server_pid=$(descendant_named "$runner_pid" convserve-serve | head -1)
  [ -n "$server_pid" ] && break
  kill -0 "$runner_pid" 2>/dev/null || fail "buildah run exited before the server started"
  sleep 0.1
done
[ -n "$server_pid" ] || fail "no convserve-server process under buildah run after 30 s"
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$server_pid/status")
[ "$uids" = "$image_user $image_user $image_user $image_user" ] ||
  fail "the server runs with uids '$uids', not the image's user $image_user"
[ "$(readlink "/proc/$server_pid/root")" != / ] || fail "the server is not chrooted into the image"
echo "server pid $server_pid runs as uid $image_user in the image's root; gRPC port $port, metrics port $metrics_port"

# Healthy once the image's own HEALTHCHECK command succeeds in the container.
healthy=""
for _ in $(seq 60); do
  if buildah run --isolation chroot "$ctr" -- "${health_cmd[@]}" >"$work/health.log" 2>&1; then
    healthy=1
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited while starting"
  sleep 1
done
[ -n "$healthy" ] || fail "the image's HEALTHCHECK did not pass within 60 s: $(cat "$work/health.log")"
echo "HEALTHCHECK passed $(($(now) - start)) s after start: $(tail -1 "$work/health.log")"
# It follows CONVSERVE_ADDRESS: a wildcard host is asked through loopback, and
# a port nobody serves fails.
for address in "0.0.0.0:$port" "[::]:$port"; do
  buildah run --isolation chroot --env "CONVSERVE_ADDRESS=$address" "$ctr" -- "${health_cmd[@]}" \
    >"$work/health.log" 2>&1 || fail "HEALTHCHECK fails for CONVSERVE_ADDRESS=$address: $(cat "$work/health.log")"
done
if buildah run --isolation chroot --env "CONVSERVE_ADDRESS=127.0.0.1:1" "$ctr" -- "${health_cmd[@]}" \
  >"$work/health.log" 2>&1; then
  fail "HEALTHCHECK passes with nothing serving on CONVSERVE_ADDRESS=127.0.0.1:1"
fi

# From the host: health, the README's conv2d, the metrics page.
cli() { "$cli_bin" --address "127.0.0.1:$port" --timeout 30 "$@"; }
[ "$(cli health)" = SERVING ] || fail "host convserve-cli health is not SERVING"
cd "$work"
"$python" -c 'import numpy as np
np.save("x.npy", np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1))
np.save("w.npy", np.ones((3, 3, 1, 1), dtype=np.float32))'
cli conv2d --input x.npy --filter w.npy --strides 2 --padding SAME --output y.npy ||
  fail "conv2d failed"
"$python" -c 'import numpy as np
y = np.load("y.npy")
assert y.shape == (1, 3, 3, 1) and y.dtype == np.float32, (y.shape, y.dtype)
assert y[0, :, :, 0].tolist() == [[16, 33, 28], [69, 117, 87], [76, 123, 88]], y[0, :, :, 0]' ||
  fail "wrong conv2d result"
METRICS_PORT=$metrics_port "$python" - <<'PY' || fail "metrics page"
import os, urllib.request
page = urllib.request.urlopen(f"http://127.0.0.1:{os.environ['METRICS_PORT']}/metrics", timeout=10).read().decode()
assert 'convserve_requests_total{op="conv2d",dtype="float",code="OK"} 1' in page, page
PY
echo "health SERVING, conv2d correct, metrics served"

# SIGTERM goes to the server process itself: buildah run does not pass signals
# on (a SIGTERM to buildah run kills the server at once and exits 1, with no
# drain). The server drains, exits 0, and buildah run exits with its status.
kill -TERM "$server_pid"
for _ in $(seq 300); do
  kill -0 "$runner_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$runner_pid" 2>/dev/null && fail "the server did not exit within 30 s of SIGTERM"
status=0
wait "$runner_pid" || status=$?
runner_pid="" server_pid=""
[ "$status" -eq 0 ] || fail "exit status $status after SIGTERM"
grep -q "draining" server.log && grep -q "stopped" server.log || fail "no drain/stop in the server log"
echo "SIGTERM: drained and exited 0"
echo "container_image: all checks passed"
