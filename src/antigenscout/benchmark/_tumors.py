"""Tumour expression for the engine and the baselines, each dataset loaded once.

An indication rule names a dataset and its samples; :class:`_TumorStore` loads the dataset
on first use (bulk tables or van Galen 2019 single cells) and cuts it to the samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import InputError
from ._baselines import DETECTED_NTPM
from ._rules import IndicationRule

if TYPE_CHECKING:
    from ..reference import Reference

VANGALEN_SUBDIR = Path("data") / "singlecell" / "vangalen2019_aml"


@dataclass
class _Tumor:
    """Tumour expression prepared for the engine and the baselines."""

    name: str
    adata: AnnData
    kind: str  # single_cell | bulk
    malignant_key: str | None
    patient_key: str | None
    mean_ntpm: pd.Series  # per gene, tumour mean in nTPM-like units
    positive: Callable[[list[str], str], float]  # sensitivity of a gene set under a gate op
    engine: dict[str, pd.DataFrame] = field(default_factory=dict)


def _bulk_tumor(name: str, adata: AnnData) -> _Tumor:
    X = adata.X.toarray() if sparse.issparse(adata.X) else np.asarray(adata.X, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    var = pd.Index(adata.var_names.astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = pd.Series(np.nanmean(X, axis=0), index=var).fillna(0.0)
    detected = np.nan_to_num(X, nan=0.0) >= DETECTED_NTPM

    def positive(genes: list[str], op: str) -> float:
        cols = detected[:, var.get_indexer(genes)]
        hit = cols.all(axis=1) if op == "and" else cols.any(axis=1)
        return float(hit.mean())

    return _Tumor(name, adata, "bulk", None, None, mean, positive)


def _single_cell_tumor(name: str, adata: AnnData) -> _Tumor:
    mask = (adata.obs["malignant"].astype(str) == "malignant").to_numpy()
    if not mask.any():
        msg = f"{name}: no cells with obs['malignant'] == 'malignant'; cannot define the tumour"
        raise InputError(msg)
    X = sparse.csr_matrix(adata.X[mask], dtype=np.float64)
    lib = np.asarray(X.sum(axis=1)).ravel()
    lib[lib == 0] = 1.0
    cpm = sparse.diags(1e6 / lib) @ X
    var = pd.Index(adata.var_names.astype(str))
    mean = pd.Series(np.asarray(cpm.mean(axis=0)).ravel(), index=var)
    Xc = X.tocsc()

    def positive(genes: list[str], op: str) -> float:
        cols = (Xc[:, var.get_indexer(genes)] > 0).toarray()
        hit = cols.all(axis=1) if op == "and" else cols.any(axis=1)
        return float(hit.mean())

    patient = "patient" if "patient" in adata.obs else None
    return _Tumor(name, adata, "single_cell", "malignant=malignant", patient, mean, positive)


class _TumorStore:
    """Loads each dataset once, on first use."""

    def __init__(
        self,
        shared: Path | None,
        override: Mapping[str, AnnData] | None,
        reference: Reference,
    ) -> None:
        self.shared = shared
        self.reference = reference
        self.override = dict(override or {})
        self._full: dict[str, AnnData] = {}
        self._made: dict[tuple[str, tuple[str, ...]], _Tumor] = {}

    def _load_full(self, dataset: str) -> AnnData:
        if dataset in self._full:
            return self._full[dataset]
        from .. import datasets  # noqa: PLC0415
        from ..pp import harmonise_genes  # noqa: PLC0415

        if dataset in self.override:
            adata = self.override[dataset].copy()
        elif dataset == "tcga":
            adata = datasets.tcga_medians()
        elif dataset == "cell_lines":
            adata = datasets.hpa_cell_lines()
        elif dataset == "vangalen2019":
            folder = None if self.shared is None else self.shared / VANGALEN_SUBDIR
            if folder is None or not folder.is_dir():
                msg = (
                    "van Galen 2019 AML files not found (expected "
                    f"<shared>/{VANGALEN_SUBDIR}); pass --shared DIR"
                )
                raise InputError(msg)
            adata = datasets.vangalen2019(folder)
        else:  # pragma: no cover - guarded by load_indications
            msg = f"unknown dataset {dataset!r}"
            raise InputError(msg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unmapped genes are expected and listed in uns
            harmonise_genes(adata, self.reference)
        self._full[dataset] = adata
        return adata

    def get(self, rule: IndicationRule) -> _Tumor:
        key = (rule.dataset, rule.samples)
        if key in self._made:
            return self._made[key]
        full = self._load_full(rule.dataset)
        name = rule.dataset if not rule.samples else f"{rule.dataset}:{'+'.join(rule.samples)}"
        if (
            rule.dataset == "vangalen2019"
            or full.uns.get("antigenscout", {}).get("kind") == "single_cell"
        ):
            tum = _single_cell_tumor(name, full)
        else:
            missing = [s for s in rule.samples if s not in full.obs_names]
            if missing:
                msg = (
                    f"samples {missing} of indication rule {rule.rule!r} are not in the "
                    f"{rule.dataset} table; fix indications.tsv"
                )
                raise InputError(msg)
            sub = full[list(rule.samples)].copy() if rule.samples else full
            tum = _bulk_tumor(name, sub)
        self._made[key] = tum
        return tum
