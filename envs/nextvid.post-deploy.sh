#!/usr/bin/env bash
# Snakemake runs this inside the freshly created conda environment of envs/nextvid.yaml, from the
# working directory of the run (the repository root, as workflow/README.md says to run it). It
# installs the checkout's `nextvid` package; the dependencies are already pinned by the env file.
set -euo pipefail
root=${NEXTVID_ROOT:-$PWD}
if ! grep -qs '^name = "nextvid"' "$root/pyproject.toml"; then
  echo "nextvid post-deploy: $root is not the nextvid repository; run snakemake from its root or set NEXTVID_ROOT" >&2
  exit 1
fi
python -m pip install --no-deps --disable-pip-version-check -e "$root"
