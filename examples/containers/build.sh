#!/usr/bin/env bash
# Builds the example container image(s) without any registry: the TypeScript service is compiled with
# `bun build --compile` into one binary, put on an otherwise empty root filesystem with the shared libraries
# it links, and turned into an image with `docker import`. The image carries a hash of its sources as a label;
# when the hash is unchanged the build is skipped, so calling this from every test run costs ~0.1 s.
#   bash examples/containers/build.sh            build infernet-echo:latest if its sources changed
#   FORCE=1 bash examples/containers/build.sh    rebuild regardless
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=${ECHO_IMAGE:-infernet-echo:latest}
label=infernet-echo.source-hash

hash=$( { cat "$here/echo/server.ts" "$here/build.sh"; bun --version; } | sha256sum | cut -c1-32)
current=$(docker image inspect "$tag" --format "{{ index .Config.Labels \"$label\" }}" 2>/dev/null || true)
if [ "${FORCE:-0}" != 1 ] && [ "$current" = "$hash" ]; then
  echo "$tag is up to date ($hash)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bun build --compile --minify "$here/echo/server.ts" --outfile "$work/svc" >/dev/null
root="$work/rootfs"
mkdir -p "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
cp "$work/svc" "$root/svc"
# The compiled binary is dynamically linked against glibc: copy exactly what ldd says it needs.
for lib in $(ldd "$work/svc" | grep -oE '/[^ ]+\.so[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo 'root:x:0:0:root:/:/svc' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/svc"]' \
  --change 'EXPOSE 3000' \
  --change 'ENV PORT=3000' \
  --change "LABEL $label=$hash" \
  - "$tag" >/dev/null
echo "built $tag ($hash)"
