"""The rule that turns two variants' per-seed accuracies into a verdict on a claim, in one place so
the findings page can state it and the tests can pin it.

Welch's two-sample 95 % confidence interval of the difference of means (seeds are independent runs;
no pairing, no equal-variance assumption). A claim "A beats B" is
  supported       when the whole interval is above 0,
  not supported   when the whole interval is below 0 (B beats A beyond the spread),
  inconclusive    otherwise: the difference is within the seed spread.
A claim "A and B are about equal" (Table 11) is supported when the interval lies inside
±EQUIVALENCE_MARGIN points, not supported when it lies entirely outside it, inconclusive otherwise.
With fewer than 2 seeds on either side there is no spread to compare with: "inconclusive (1 seed)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

from nextvid.report.results import summarise

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, ONE_SEED, MISSING = (
    "supported",
    "not supported",
    "inconclusive",
    "inconclusive (1 seed)",
    "no results",
)
EQUIVALENCE_MARGIN = 1.0  # top-1 points: the paper's k = 1 vs k = 4 differences are <= 0.6
LEVEL = 0.95
Kind = Literal["greater", "equivalent"]

RULE_TEXT = (
    f"For each comparison A vs B: Welch's two-sample {LEVEL:.0%} confidence interval of mean(A) − mean(B) over pretraining seeds "
    '(sample std, Welch–Satterthwaite degrees of freedom). "A beats B" is **supported** when the whole interval is above 0, '
    "**not supported** when it is entirely below 0, **inconclusive** when it contains 0 (the difference is within the seed spread). "
    f'"A ≈ B" is supported when the interval lies within ±{EQUIVALENCE_MARGIN:g} points, not supported when it lies entirely outside, '
    "inconclusive otherwise. With one seed on either side: **inconclusive (1 seed)**. A claim with several comparisons is supported "
    "only if every one is, not supported if any one is not."
)


@dataclass(frozen=True)
class Comparison:
    a: tuple[float, float, int]  # mean, std, n
    b: tuple[float, float, int]
    diff: float
    low: float
    high: float
    verdict: str


def compare(a: Sequence[float], b: Sequence[float], kind: Kind = "greater") -> Comparison:
    sa, sb = summarise(a), summarise(b)
    if sa[2] == 0 or sb[2] == 0:
        return Comparison(sa, sb, math.nan, math.nan, math.nan, MISSING)
    diff = sa[0] - sb[0]
    if sa[2] < 2 or sb[2] < 2:
        return Comparison(sa, sb, diff, math.nan, math.nan, ONE_SEED)
    va, vb = sa[1] ** 2 / sa[2], sb[1] ** 2 / sb[2]
    se = math.sqrt(va + vb)
    half = (
        0.0
        if se == 0
        else t_quantile(0.5 + LEVEL / 2, (va + vb) ** 2 / (va**2 / (sa[2] - 1) + vb**2 / (sb[2] - 1))) * se
    )
    low, high = diff - half, diff + half
    return Comparison(sa, sb, diff, low, high, _decide(low, high, kind))


def _decide(low: float, high: float, kind: Kind) -> str:
    if kind == "greater":
        return SUPPORTED if low > 0 else NOT_SUPPORTED if high < 0 else INCONCLUSIVE
    m = EQUIVALENCE_MARGIN
    if -m <= low and high <= m:
        return SUPPORTED
    return NOT_SUPPORTED if low > m or high < -m else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """A claim made of several comparisons; comparisons without results are left out and said so."""
    present = [v for v in verdicts if v != MISSING]
    if not present:
        return MISSING
    if NOT_SUPPORTED in present:
        out = NOT_SUPPORTED
    elif ONE_SEED in present:
        out = ONE_SEED
    else:
        out = SUPPORTED if all(v == SUPPORTED for v in present) else INCONCLUSIVE
    return (
        out if len(present) == len(verdicts) else f"{out} ({len(present)} of {len(verdicts)} comparisons have results)"
    )


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile (scipy: a dependency of the report extra, through scikit-learn)."""
    try:
        from scipy.stats import t
    except ImportError as err:
        raise ImportError("the findings need scipy (pip install 'nextvid[report]')") from err
    return float(t.ppf(p, df))
