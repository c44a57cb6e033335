"""Which (extractor, freeze depth) pairs a search across several extractors tries: the probe's rule.

The probe (`tfxfer.search.probing`) scores every cut of every extractor on frozen features. The trials then go to
the pairs it ranks highest:

1. an extractor is kept when its best cut scores within `margin` of the best cut of any extractor;
2. for each kept extractor, with k* its best cut (the freeze depth whose frozen features served best; of cuts
   that tie, the deepest, which trains fewer blocks and so costs less, where the probe cannot tell them apart),
   the candidates are k* (train the blocks after it), the `neighbours` cuts on either side of k*, and every block
   frozen (deep feature extraction: the cheapest trial, on cached output).

Everything a search then tunes (learning rates, warm-up, head) is tuned for these pairs only.
"""

import math
import os

from tfxfer.search.probing import SCORES
from tfxfer.search.space import candidate_name


def check_probe_rule(extractors, score, margin):
    """`TransferSearch`'s `extractors`, `probe_score` and `probe_margin`, checked; returns the extractors as a list.

    Example:
        >>> check_probe_rule("mobilenet_v2", "linear", 0.05)
        Traceback (most recent call last):
        ...
        ValueError: extractors= takes a list of several extractors; got one ('mobilenet_v2'): pass extractor= for one.
    """
    if isinstance(extractors, (str, os.PathLike)) or hasattr(extractors, "n_blocks"):
        raise ValueError(f"extractors= takes a list of several extractors; got one ({extractors!r}): pass "
                         "extractor= for one.")
    extractors = list(extractors)
    if len(extractors) < 2:
        raise ValueError(f"extractors= chooses among several extractors; got {len(extractors)}: pass extractor= for "
                         "one.")
    if score not in SCORES:
        raise ValueError(f"probe_score must be one of {SCORES}; got {score!r}.")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < math.inf:
        raise ValueError(f"probe_margin must be a number >= 0 (how far below the best probe score an extractor may "
                         f"be and still be tried); got {margin!r}.")
    return extractors


def choose_candidates(table, n_blocks, *, score="linear", margin=0.05, neighbours=1):
    """The `candidate` values (`"extractor@depth"`) that the probe's table leads to, best extractor first.

    Args:
        table: What `tfxfer.probe` returned.
        n_blocks: `{extractor source: blocks}` of the extractors probed.
        score: The probe score to rank by (a column of `table`).
        margin: How far below the best score an extractor's best cut may be and still be tried.
        neighbours: Cuts on either side of each extractor's best cut to try as well.

    Returns:
        A list of candidate names, each extractor's best cut first.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"extractor": ["a"] * 4 + ["b"] * 2, "cut": [1, 2, 3, 4, 1, 2],
        ...                       "linear": [0.5, 0.9, 0.8, 0.7, 0.6, 0.7]})
        >>> choose_candidates(table, {"a": 4, "b": 2})
        ['a@2', 'a@1', 'a@3', 'a@4']
        >>> choose_candidates(table, {"a": 4, "b": 2}, margin=0.25)
        ['a@2', 'a@1', 'a@3', 'a@4', 'b@2', 'b@1']

        Of cuts that tie, the deepest is k*:

        >>> choose_candidates(table.assign(linear=[0.5, 0.9, 0.7, 0.9, 0.6, 0.7]), {"a": 4, "b": 2})
        ['a@4', 'a@3']
    """
    if score not in table:
        raise ValueError(f"The probe's table has no {score!r} score; its scores are "
                         f"{[c for c in table.columns if c not in ('extractor', 'cut', 'block', 'depth', 'dim')]}.")
    best = table.groupby("extractor", sort=False)[score].max().sort_values(ascending=False, kind="stable")
    if best.isna().any():
        raise ValueError(f"The probe's {score!r} score is missing (NaN) at every cut of {list(best.index[best.isna()])}: "
                         "the validation split gives it nothing to score (a constant regression target, or no label "
                         "present both with and without). Pass another probe_score, or load data whose validation "
                         "split varies.")
    candidates = []
    for extractor, top in best.items():
        if top < best.iloc[0] - margin - 1e-9:  # within the margin, rounding aside
            continue
        rows = table[table.extractor == extractor].sort_values("cut")
        cuts = rows.cut.tolist()
        at = cuts.index(int(rows.loc[rows[score][::-1].idxmax(), "cut"]))  # of equal maxima, the deepest
        depths = [cuts[at], *cuts[max(at - neighbours, 0):at], *cuts[at + 1:at + 1 + neighbours], n_blocks[extractor]]
        candidates += [candidate_name(extractor, depth) for depth in dict.fromkeys(int(d) for d in depths)]
    return candidates
