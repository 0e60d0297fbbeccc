"""Evaluations fold change cannot match: within-tissue AUROC by hand and against a brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from antigenscout.benchmark._evaluations import WITHIN_TISSUES, auroc, within_tissue


def test_auroc_is_the_pairwise_win_rate() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, size=30).astype(float)  # many ties
    y = rng.random(30) < 0.4
    pos, neg = s[y], s[~y]
    brute = np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg])
    assert auroc(s, y) == pytest.approx(brute)
    assert np.isnan(auroc(s, np.zeros(30, dtype=bool)))


def test_within_tissue_by_hand() -> None:
    """Three rows; skin damaged for rows 0 and 1; the engine places them above row 2 in skin
    (AUROC 1), raw expression puts row 2 first (AUROC 0); the marrow (blood and immune,
    through ORGAN_SYSTEMS) is damaged for row 2 only. Tissues without a damaged or spared
    row are listed and left out of the mean."""
    contexts = pd.DataFrame(
        {"system": ["skin", "skin", "haematopoietic", "immune (myeloid)", "nervous"]},
        index=["k1", "k2", "hsc", "mono", "neuron"],
    )
    rows = pd.DataFrame(
        {
            "status": ["scored", "scored", "scored", "not_scored", "scored"],
            "class": ["on_target"] * 5,
            # the last row is pair C again, naming skin: C is damaged in marrow and skin
            "mapped_contexts": ["k1", "k2;neuron", "mono", "k1", "k2"],
            "genes": ["A", "B", "C", "D", "C"],
        }
    )
    eng = {"A": [0.9, 0.1, 0, 0, 0], "B": [0.2, 0.8, 0, 0, 0.5], "C": [0.1, 0.1, 0.2, 0.9, 0]}
    raw = {"A": [1, 1, 5, 5, 0], "B": [2, 0, 5, 4, 9], "C": [9, 9, 1, 1, 0]}

    def values(row: pd.Series) -> dict[str, pd.Series]:
        g = row["genes"]
        return {
            "antigenscout": pd.Series(eng[g], index=contexts.index, dtype=float),
            "fold_change": pd.Series(raw[g], index=contexts.index, dtype=float),
        }

    res = within_tissue(rows, contexts, values, ("antigenscout", "fold_change"), n_boot=200, seed=0)
    assert res["n_rows"] == 4
    assert res["n_pairs"] == 3
    # C now has skin damaged too: all three pairs damaged in skin, none spared -> left out
    assert res["tissues_used"] == ["marrow"]
    assert res["tissues"]["skin"] == {"n_damaged": 3, "n_spared": 0}
    # marrow: row 2 (C) damaged; engine max over hsc/mono: A 0, B 0, C 0.9 -> 1.0;
    # raw: A 5, B 5, C 1 -> 0.0
    assert res["tissues"]["marrow"]["antigenscout"] == 1.0
    assert res["tissues"]["marrow"]["fold_change"] == 0.0
    assert res["tissues"]["liver"] == {"n_damaged": 0, "n_spared": 3}
    assert res["mean_auroc"]["antigenscout"]["estimate"] == 1.0
    assert res["paired"]["fold_change"]["estimate"] == 1.0
    assert set(WITHIN_TISSUES) == {"skin", "lung", "liver", "gut", "marrow", "kidney"}
