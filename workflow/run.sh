#!/usr/bin/env bash
# The README's main command: the embedded-default experiment on this machine (CPU), end to end.
#   bash workflow/run.sh                  # everything: data, pretraining, probes, tables, figures
#   bash workflow/run.sh -n               # what would run (arguments go to snakemake)
#   NEXTVID_WORKFLOW_CONFIG=workflow/config/grid.yaml bash workflow/run.sh   # another experiment config
# Idempotent: finished outputs are kept, an interrupted run picks up where it stopped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
config=${NEXTVID_WORKFLOW_CONFIG:-workflow/config/embedded.yaml}
bash "$root/envs/bootstrap.sh"
cd "$root"
export PATH="$root/.venv/bin:$PATH"   # the rules call `nextvid`
nextvid data fetch >/dev/null          # the embedded default's registry sources (cached after the first time)
start=$(date +%s)
snakemake --profile workflow/profiles/local "$@" --configfile "$config"   # targets before --configfile (it takes several values)
for arg in "$@"; do
  case $arg in -n|--dry-run|--dryrun|-l|--list*|--lint*|--summary|-S|--detailed-summary|-D) exit 0 ;; esac
done
snakemake --profile workflow/profiles/local --configfile "$config" --report results/report.html >/dev/null 2>&1 \
  || echo "[run] the HTML report could not be built (snakemake --report); the files below are complete" >&2
names=$(python - "$config" <<'PY'
import sys, yaml
print(" ".join(yaml.safe_load(open(sys.argv[1]))["experiments"]))
PY
)
echo "[run] done in $(( ($(date +%s) - start) / 60 )) min (workflow only; finished outputs are not redone)"
for name in $names; do
  echo "[run] tables:  $root/results/tables/$name/   (Markdown, LaTeX, CSV; *.sources.csv traces every cell)"
  echo "[run] figures: $root/results/figures/$name/"
done
echo "[run] report:  $root/results/report.html"
