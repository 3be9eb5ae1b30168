#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment, and links the workflow's SLURM profile
# so that `snakemake --profile slurm all` works from the repository root. Idempotent: it does
# nothing when the environment already matches pyproject.toml and the link is in place, so every
# entry point can call it unconditionally.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# workflow/profiles/install.sh: a link, repointed from another checkout, and someone else's profile
# of that name left alone (then this says so and goes on: the main command does not need it)
if [ "${NEXTVID_LINK_PROFILE:-1}" = 1 ] && ! bash "$root/workflow/profiles/install.sh"; then
  echo "[bootstrap] the slurm profile was not linked; on a cluster use --profile $root/workflow/profiles/slurm" >&2
fi
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
