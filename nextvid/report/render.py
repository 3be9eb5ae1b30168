"""Writing a table: Markdown and LaTeX rendered here (pandas' renderers need tabulate/jinja2, which
the package does not depend on), CSVs through pandas, every file atomically. A `.caption.rst` beside
each table serves `snakemake --report`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nextvid.io import atomic_write_text
from nextvid.report.tables import Table

_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "≈": r"$\approx$",
    "–": "--",
    "<": r"$<$",
    ">": r"$>$",
}


def markdown(table: Table) -> str:
    lines = [f"### {table.title}", "", *table.caption, ""]
    lines += _md_grid(table.display) + [""]
    lines += [f"*Note:* {n}" for n in table.notes]
    return "\n".join(lines).rstrip() + "\n"


def _md_grid(df: pd.DataFrame) -> list[str]:
    cols = list(df.columns)
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(cell(row[c]) for c in cols) + " |" for _, row in df.iterrows()]
    return out


def latex(table: Table) -> str:
    df = table.display
    cols = list(df.columns)
    body = [" & ".join(tex_escape(c) for c in cols) + r" \\", r"\midrule"]
    body += [" & ".join(tex_escape(str(row[c])) for c in cols) + r" \\" for _, row in df.iterrows()]
    caption = " ".join([table.title + "."] + table.caption + table.notes)
    return (
        "\n".join(
            [
                r"\begin{table}[t]",
                r"\centering",
                r"\small",
                r"\begin{tabular}{" + "ll" + "l" + "c" * (len(cols) - 3) + "}",
                r"\toprule",
                *body,
                r"\bottomrule",
                r"\end{tabular}",
                r"\caption{" + tex_escape(caption) + "}",
                r"\label{tab:" + table.name + "}",
                r"\end{table}",
            ]
        )
        + "\n"
    )


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def caption_rst(table: Table) -> str:
    return (
        "\n\n".join(
            [f"**{table.title}.**"] + table.caption + table.notes + [f"Cell sources: {table.name}.sources.csv."]
        )
        + "\n"
    )


def write_table(table: Table, out_dir: str | Path) -> list[Path]:
    """DIR/<name>.md, .tex, .csv (both selection rules), .sources.csv, .caption.rst."""
    out = Path(out_dir)
    files = {
        f"{table.name}.md": markdown(table),
        f"{table.name}.tex": latex(table),
        f"{table.name}.csv": table.wide.to_csv(index=False),
        f"{table.name}.sources.csv": table.sources.to_csv(index=False),
        f"{table.name}.caption.rst": caption_rst(table),
    }
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return [out / name for name in files]
