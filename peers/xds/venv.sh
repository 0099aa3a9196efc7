#!/usr/bin/env bash
# Makes the xDS tests' venv (target/xds-venv, or the folder given) from
# peers/xds/requirements.txt, and installs again only when that file changed
# since the last install. Prints the venv's python.
#
#   bash peers/xds/venv.sh && target/xds-venv/bin/python -m pytest peers/xds -s
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/target/xds-venv}
requirements=$root/peers/xds/requirements.txt
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
if ! cmp -s "$requirements" "$venv/.requirements.txt"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$venv/.requirements.txt"
fi
echo "$venv/bin/python"
