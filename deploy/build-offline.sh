#!/usr/bin/env bash
# Build the gridsight image where no container registry can be reached (a camera network with
# only a Debian mirror and a PyPI mirror, or a proxy that inspects TLS), then smoke-test it.
#
# The base image is made from the Debian mirror with debootstrap: Debian 12 and its Python 3.11,
# as python:3.11-slim-bookworm has, carrying this host's extra CA certificates and pip
# configuration, so that the build reaches the same mirrors this host does. deploy/Dockerfile is
# then built on it unchanged (PYTHON_IMAGE) and the image is checked: `gridsight check` on its
# bundled cameras.toml and `gridsight demo` (its own RTSP camera, the ONNX detector, an event).
#
#   sudo deploy/build-offline.sh                       # podman
#   sudo ENGINE=docker deploy/build-offline.sh         # a Docker daemon
#   sudo ENGINE="podman --runtime runc" deploy/build-offline.sh
# Needs: debootstrap, the engine, root (debootstrap and chroot). TAG, DEBIAN_MIRROR, DEMO_S
# (0: no demo) may be set.
set -euo pipefail

read -r -a engine <<<"${ENGINE:-podman}"
tag=${TAG:-localhost/gridsight:offline}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
demo_s=${DEMO_S:-100}
base=localhost/gridsight-base:bookworm
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== base image from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
  bookworm "$work/root" "$mirror" >"$work/debootstrap.log" || {
  tail -n 20 "$work/debootstrap.log"
  exit 1
}
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$work/root/usr/local/share/ca-certificates/"
  chroot "$work/root" update-ca-certificates >/dev/null
fi
if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$work/root/etc/pip.conf"; fi
tar -C "$work/root" -c . | "${engine[@]}" import - "$base" >/dev/null

echo "== building $tag"
format=()
# podman writes OCI images by default, which have no HEALTHCHECK
if [ "$(basename "${engine[0]}")" = podman ]; then format=(--format docker); fi
"${engine[@]}" build "${format[@]}" --network host --build-arg "PYTHON_IMAGE=$base" \
  -f "$repo/deploy/Dockerfile" -t "$tag" "$repo"

echo "== gridsight check"
"${engine[@]}" run --rm --network host "$tag" check --config /opt/gridsight/cameras.toml

if [ "$demo_s" -gt 0 ]; then
  echo "== gridsight demo for ${demo_s} s (ports 18000, 18554)"
  out=$("${engine[@]}" run --rm --network host "$tag" demo --port 18000 --rtsp-port 18554 \
    --duration "$demo_s" 2>&1) || {
    echo "$out"
    exit 1
  }
  echo "$out" | tail -n 4
  grep -q "fire_lane_occupation" <<<"$out" || {
    echo "the demo recorded no fire-lane event"
    exit 1
  }
fi
echo "== $tag built and checked"
