#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment. Idempotent: it does nothing when the
# environment already matches pyproject.toml, so every entry point can call it unconditionally.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NEXTVID_VENV:-$root/.venv}
stamp="$venv/.nextvid-installed"
want=$(cat "$root/pyproject.toml" "$root/envs/bootstrap.sh" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c "import nextvid" 2>/dev/null; then
  exit 0
fi
echo "[bootstrap] installing nextvid and its dependencies into $venv (a few minutes the first time)" >&2
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[dev]" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
echo "$want" > "$stamp"
