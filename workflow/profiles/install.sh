#!/usr/bin/env bash
# Makes `snakemake --profile slurm all` work as written from the repository root.
#
# Snakemake resolves a profile given by name in the working directory, then in the user's config
# folder ($XDG_CONFIG_HOME/snakemake, default ~/.config/snakemake), then in /etc/xdg/snakemake
# (snakemake/cli.py, get_profile_dir). The repository keeps its profiles in workflow/profiles/, so
# this links workflow/profiles/slurm as <user config>/snakemake/slurm. Idempotent. A link to another
# checkout's workflow/profiles/slurm is repointed here; anything else of that name is left alone.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=$root/workflow/profiles/slurm
dest=${XDG_CONFIG_HOME:-$HOME/.config}/snakemake
link=$dest/slurm
mkdir -p "$dest"
if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
  exit 0
elif [ -L "$link" ] && [[ "$(readlink "$link")" == */workflow/profiles/slurm ]]; then
  echo "[profiles] $link: was $(readlink "$link"), now $target" >&2
  ln -sfn "$target" "$link"
elif [ -e "$link" ] || [ -L "$link" ]; then
  echo "[profiles] $link exists and is not a link to a nextvid checkout; left alone." >&2
  echo "[profiles] use --profile $target instead of --profile slurm" >&2
  exit 1
else
  ln -s "$target" "$link"
  echo "[profiles] $link -> $target" >&2
fi
