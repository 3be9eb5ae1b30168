#!/usr/bin/env bash
# The test command (README): sets up the environment if needed, then runs the whole suite on CPU.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k masking`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/envs/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest -q "$@"
