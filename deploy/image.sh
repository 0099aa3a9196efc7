#!/usr/bin/env bash
# Builds the Dockerfile with buildah where no image registry is reachable
# (CI): the runtime base is made here, and the binaries are this machine's
# release build, stripped. Needs root and Debian's buildah (vfs storage,
# chroot isolation: no daemon, no OCI runtime).
#
#   cargo build --release --quiet --bins --example h2_floor
#   bash deploy/image.sh [NAME]    # NAME: search:ci by default, as localhost/NAME
#
# The base stands in for distroless's cc image: an empty image with the
# libraries the binaries load (found with ldd, copied from this machine),
# CA certificates, and the non-root user 65532 (nonroot). Made this way it
# takes a second and 3.4 MB (glibc, libgcc_s, the CA bundle); a debootstrap
# minbase took 71 s and 206 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:-search:ci}
base=localhost/search-runtime-base:ci
buildah=(buildah --storage-driver vfs)
out=target/image
# The release build, wherever cargo put it (CARGO_TARGET_DIR).
release=$(python3 tools/cargo_target.py)/release

# Stripped binaries in a build context of their own; their debug info apart,
# where their debuglink names it (gdb and addr2line find it there).
rm -rf "$out"
mkdir -p "$out/context" "$out/debug"
for bin in server client; do
  objcopy --only-keep-debug "$release/$bin" "$out/debug/$bin.debug"
  objcopy --strip-all --add-gnu-debuglink="$out/debug/$bin.debug" "$release/$bin" "$out/context/$bin"
done

container=$("${buildah[@]}" from scratch)
trap '"${buildah[@]}" rm "$container" >/dev/null 2>&1 || true' EXIT
root=$("${buildah[@]}" mount "$container")

# Each library the binaries load, and the dynamic loader, at the path ldd
# found it at.
for lib in $(ldd "$out/context/server" "$out/context/client" | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
mkdir -p "$root/etc/ssl/certs" "$root/home/nonroot" "$root/tmp"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$root/etc/group"
chown 65532:65532 "$root/home/nonroot"
chmod 1777 "$root/tmp"
"${buildah[@]}" config --env PATH=/usr/local/bin:/usr/bin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$container"
"${buildah[@]}" commit --quiet --rm "$container" "$base" >/dev/null

# The Dockerfile as users build it, its bases chosen by build arguments: only
# the prebuilt stage runs, so the rust image is never pulled. (--layers
# --force-rm: without them buildah 1.28 leaves the binaries stage's container.)
"${buildah[@]}" bud --quiet --isolation chroot --pull=never --layers --force-rm \
  --build-arg RUNTIME_BASE="$base" --build-arg BINARIES=prebuilt \
  -t "$name" -f Dockerfile "$out/context" >/dev/null
"${buildah[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "localhost/$name"
