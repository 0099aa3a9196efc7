#!/usr/bin/env bash
# Installs the tools that regenerate gen/ and check the contract, at the exact
# versions buf.gen.yaml was written for (building needs none of them):
#   buf                     from the npm registry (@bufbuild/buf)
#   protoc-gen-prost        cargo install --locked  (prost 0.14)
#   protoc-gen-tonic        cargo install --locked  (tonic 0.14)
#   protoc-gen-prost-serde  cargo install --locked  (pbjson 0.8+)
#   protoc-gen-es           npm ci in web/ (with the page's bundler and test driver),
#                           run by buf.gen.yaml from web/node_modules/.bin
# A tool already installed at its version is left alone, so a second run is quick.
# buf goes to $BUF_PREFIX/bin (default ~/.local/bin); the plugins to ~/.cargo/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
PLUGINS=(protoc-gen-prost@0.5.0 protoc-gen-tonic@0.5.0 protoc-gen-prost-serde@0.4.0)
BUF_PREFIX=${BUF_PREFIX:-$HOME/.local}

if [[ "$("$BUF_PREFIX/bin/buf" --version 2>/dev/null)" != "$BUF_VERSION" ]]; then
  echo "installing buf $BUF_VERSION into $BUF_PREFIX/bin"
  npm install --global --no-fund --no-audit --prefix "$BUF_PREFIX" "@bufbuild/buf@$BUF_VERSION"
fi

installed=$(cargo install --list)
for plugin in "${PLUGINS[@]}"; do
  name=${plugin%@*} version=${plugin#*@}
  if ! grep -qx "$name v$version:" <<<"$installed"; then
    echo "installing $name $version"
    cargo install --locked "$plugin"
  fi
done

# web/package-lock.json pins protoc-gen-es with the page's other tools; they
# are installed again when the lock is newer than what npm last installed.
es_version=$(node -p 'require("./web/package.json").devDependencies["@bufbuild/protoc-gen-es"]')
if [[ "$(web/node_modules/.bin/protoc-gen-es --version 2>/dev/null)" != "protoc-gen-es v$es_version" ]] ||
  [[ ! web/node_modules/.package-lock.json -nt web/package-lock.json ]]; then
  echo "installing protoc-gen-es $es_version (npm ci in web/)"
  npm ci --prefix web --no-fund --no-audit --loglevel=error
fi

missing=()
for tool in buf protoc-gen-prost protoc-gen-tonic protoc-gen-prost-serde; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "installed, but not on PATH: ${missing[*]}" >&2
  echo "add them with: export PATH=\"$BUF_PREFIX/bin:\${CARGO_HOME:-\$HOME/.cargo}/bin:\$PATH\"" >&2
  exit 1
fi
echo "tools ready: buf $(buf --version), ${PLUGINS[*]}, protoc-gen-es@$es_version"
