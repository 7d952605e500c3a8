#!/usr/bin/env bash
# Builds the node's container image from a release binary without any registry: the binary on an otherwise empty
# root filesystem with the shared libraries it links (glibc) and the CA certificates, imported with `docker import`.
#   bash deploy/build-image.sh BINARY [TAG=infernet-node:<version the binary reports>]
set -euo pipefail
binary=$(realpath "$1")
tag=${2:-infernet-node:$("$binary" --version | cut -d' ' -f2)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc/infernet-node" "$root/var/lib/infernet-node" "$root/var/log/infernet-node"
chmod 1777 "$root/tmp"
cp "$binary" "$root/usr/local/bin/infernet-node"
for lib in $(ldd "$binary" | grep -oE '/[^ ]+\.so[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$root/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
echo 'root:x:0:0:root:/var/lib/infernet-node:/usr/local/bin/infernet-node' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/usr/local/bin/infernet-node"]' \
  --change 'CMD ["--config", "/etc/infernet-node/config.json"]' \
  --change 'WORKDIR /var/lib/infernet-node' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'EXPOSE 4000' \
  - "$tag" >/dev/null
echo "built $tag"
