"""Atlas build: .h5ad and TileDB-SOMA, in-process and on a dask LocalCluster, same tables;
tables checked against an independent computation with antigenscout.pp.positivity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.special import gammaincc

from antigenscout import datasets
from antigenscout._errors import AntigenscoutWarning, InputError
from antigenscout.atlas import Atlas, build_atlas, load_atlas, map_cell_types, plan_chunks
from antigenscout.reference import load_reference

CL = {
    "HSC": "hematopoietic stem cell",
    "Mono": "monocyte",
    "T": "T cell",
    "earlyEry": "erythroid progenitor cell",
    "lateEry": "erythroblast",
}


@pytest.fixture(scope="module")
def healthy() -> ad.AnnData:
    """Real healthy marrow cells of the packaged van Galen subset, 3,000 genes, CL names."""
    d = datasets.demo()
    d = d[(d.obs["malignant"] == "normal").to_numpy()].copy()
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(d.n_vars, 3000, replace=False))
    expressed = np.flatnonzero(np.asarray((d.X > 0).sum(axis=0)).ravel() >= 20)
    genes = np.union1d(keep, expressed[:500])
    a = ad.AnnData(
        X=sparse.csr_matrix(d.X[:, genes], dtype=np.float32),
        obs=pd.DataFrame(
            {
                "cell_type": d.obs["cell_type"].astype(str).replace(CL).to_numpy(),
                "donor_id": d.obs["patient"].astype(str).to_numpy(),
            },
            index=d.obs_names.astype(str),
        ),
        var=pd.DataFrame(
            {"feature_name": d.var_names.astype(str)[genes]},
            index=pd.Index(d.var_names.astype(str)[genes]),
        ),
    )
    a.var["feature_id"] = a.var_names
    return a


@pytest.fixture(scope="module")
def files(healthy: ad.AnnData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("atlas")
    h5 = root / "healthy.h5ad"
    healthy.write_h5ad(h5)
    out = {"h5ad": str(h5)}
    soma_io = pytest.importorskip("tiledbsoma.io")
    uri = str(root / "soma")
    soma_io.from_anndata(uri, healthy, measurement_name="RNA", X_layer_name="raw")
    out["soma"] = uri
    return out


def _same(a: Atlas, b: Atlas) -> None:
    for name in ("fraction", "mean", "detected"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_names=False)
    pd.testing.assert_frame_equal(a.cell_types, b.cell_types)
    np.testing.assert_array_equal(a.sample_types, b.sample_types)
    np.testing.assert_array_equal(a.sample_genes, b.sample_genes)
    np.testing.assert_array_equal(a.sample_bits, b.sample_bits)


@pytest.fixture(scope="module")
def built(files: dict[str, str]) -> dict[str, Atlas]:
    kw = {"cell_type_key": "cell_type", "donor_key": "donor_id", "chunk_cells": 400}
    return {
        "h5ad": build_atlas(files["h5ad"], **kw),
        "soma": build_atlas(files["soma"], **kw),
    }


def test_h5ad_and_soma_give_identical_tables(built: dict[str, Atlas]) -> None:
    _same(built["h5ad"], built["soma"])
    assert built["h5ad"].metadata["source_kind"] == "h5ad"
    assert built["soma"].metadata["source_kind"] == "soma"


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_tables(
    files: dict[str, str], built: dict[str, Atlas]
) -> None:
    distributed = pytest.importorskip("dask.distributed")
    kw = {"cell_type_key": "cell_type", "donor_key": "donor_id", "chunk_cells": 400}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for kind in ("h5ad", "soma"):
            seen: list[tuple] = []
            on_dask = build_atlas(files[kind], dask=client, progress=_record(seen), **kw)
            assert on_dask.metadata["build"]["workers"] == 2
            _same(on_dask, built["h5ad"])
            _check_progress(seen, on_dask)


def _record(seen: list[tuple]) -> Any:
    return lambda step, done, total: seen.append((step, done, total))


def _check_progress(seen: list[tuple], atlas: Atlas) -> None:
    """One call per chunk of the 'cell types' step, cells rising to every cell."""
    assert seen[0] == ("opening the atlas", 0, None)
    counted = [(d, t) for s, d, t in seen if s == "cell types"]
    n = int(atlas.cell_types["n_cells"].sum())
    assert len(counted) == atlas.metadata["build"]["chunks"]
    assert [d for d, _ in counted] == sorted(d for d, _ in counted)
    assert counted[-1] == (n, n)


def test_build_reports_progress_per_chunk(files: dict[str, str], built: dict[str, Atlas]) -> None:
    seen: list[tuple] = []
    kw = {"cell_type_key": "cell_type", "donor_key": "donor_id", "chunk_cells": 400}
    again = build_atlas(files["h5ad"], progress=_record(seen), **kw)
    _same(again, built["h5ad"])
    _check_progress(seen, again)


def _rate_fraction_brute(x: np.ndarray, lib: np.ndarray, t: float) -> np.ndarray:
    """The rate model written out per cell (residuals, not the expanded sums): method of
    moments, shape clipped to [0.05, 50], shape 1 where the type is not callable (fewer than
    10 expected reads at t) or the shape sits at a clip bound."""
    s = lib / 1e4
    mu = x.sum(0) / s.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = ((x - mu[None, :] * s[:, None]) ** 2).sum(0)
        inv_k = (resid - mu * s.sum()) / (mu**2 * (s**2).sum())
    inv_k = np.where(np.isfinite(inv_k), inv_k, 1 / 50)
    k = 1 / np.clip(inv_k, 1 / 50, 1 / 0.05)
    inside = (k > 0.05 * (1 + 1e-9)) & (k < 50 * (1 - 1e-9))
    k = np.where(inside & (t * s.sum() >= 10), k, 1.0)
    out = np.zeros_like(mu)
    pos = mu > 0
    out[pos] = gammaincc(k[pos], k[pos] * t / mu[pos])
    return out


def _donor_soup(healthy: ad.AnnData, chunk_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Each donor's contamination (the median of its chunks' estimates from their labelled
    types) and its summed counts, recomputed chunk by chunk."""
    from antigenscout.pp._ambient import estimate_ambient

    donors = pd.Categorical(healthy.obs["donor_id"]).codes.astype(np.int64)
    types = healthy.obs["cell_type"].to_numpy()
    X = sparse.csr_matrix(healthy.X, dtype=np.float64)
    n_d = donors.max() + 1
    rho: list[list[float]] = [[] for _ in range(n_d)]
    for rows in plan_chunks(donors, chunk_cells):
        lib = np.asarray(X[rows].sum(axis=1)).ravel()
        amb, _ = estimate_ambient(
            X[rows], np.zeros(rows.size), types[rows], library=lib, clusters=False
        )
        rho[donors[rows[0]]].append(float(amb.table["contamination"].iloc[0]))
    med = np.array([np.nanmedian(r) if np.isfinite(r).any() else np.nan for r in rho])
    genes = np.vstack([np.asarray(X[donors == d].sum(axis=0)).ravel() for d in range(n_d)])
    return med, genes


def test_tables_match_independent_computation(healthy: ad.AnnData, built: dict[str, Atlas]) -> None:
    """On 3,000 genes no chunk's soup can be estimated: nothing is taken off."""
    rho, _ = _donor_soup(healthy, 400)
    assert not np.isfinite(rho).any()
    _check_tables(healthy, built["h5ad"], 400)


def test_tables_match_independent_computation_with_soup() -> None:
    """On every gene one donor's soup is estimated (9 % of a droplet's UMIs) and taken off
    its sampled cells' calls; the other donors', not estimable, are not discounted."""
    d = datasets.demo()
    d = d[(d.obs["malignant"] == "normal").to_numpy()].copy()
    a = ad.AnnData(
        X=sparse.csr_matrix(d.X, dtype=np.float32),
        obs=pd.DataFrame(
            {"cell_type": d.obs["cell_type"].astype(str).to_numpy(), "donor_id": d.obs["patient"]},
            index=d.obs_names.astype(str),
        ),
        var=pd.DataFrame(index=d.var_names.astype(str)),
    )
    a.obs["donor_id"] = a.obs["donor_id"].astype(str)
    atlas = build_atlas(a, cell_type_key="cell_type", donor_key="donor_id")
    rho, _ = _donor_soup(a, 10_000)
    assert np.isfinite(rho).any()
    assert not np.isfinite(rho).all()
    _check_tables(a, atlas, 10_000)


def _check_tables(healthy: ad.AnnData, atlas: Atlas, chunk_cells: int) -> None:
    """Means, detection and counts by numpy; these Seq-Well types are all too shallow for the
    rate model (under 10 expected reads at the threshold over each type), so each fraction is
    the knn calls of its cells: recomputed with pp's positive_blocks (neighbours within
    donor and type) and each donor's soup recomputed from its chunks."""
    from antigenscout.pp._ambient import Soup
    from antigenscout.pp._graph import neighbor_graph
    from antigenscout.pp._positivity import positive_blocks

    types = healthy.obs["cell_type"].to_numpy()
    donor_names = healthy.obs["donor_id"].to_numpy()
    donors = pd.Categorical(donor_names).codes
    X = sparse.csr_matrix(healthy.X, dtype=np.float64)
    lib = np.asarray(X.sum(axis=1)).ravel()
    rho, genes = _donor_soup(healthy, chunk_cells)
    background = np.nan_to_num(rho)[:, None] * genes / genes.sum(1, keepdims=True)
    codes = pd.Categorical(types).codes
    order = np.argsort(codes, kind="stable")
    batches: list[np.ndarray] = []
    for g in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1):
        if batches and batches[-1].size + g.size <= chunk_cells:
            batches[-1] = np.concatenate([batches[-1], g])
        else:
            batches.append(g)
    pos = np.zeros(healthy.shape, dtype=bool)
    for b in batches:
        rows = np.sort(b)
        sub = ad.AnnData(X=X[rows])
        pool = zip(donor_names[rows], types[rows], strict=True)
        sub.obs["pool"] = [f"{d}\t{t}" for d, t in pool]
        graph = neighbor_graph(sub, n_neighbors=5, batch_key="pool", pca="per_batch")
        code = np.where(np.isfinite(rho[donors[rows]]), donors[rows], -1)
        soup = Soup(background, code.astype(np.int64), np.nan_to_num(rho))
        blocks = positive_blocks(
            X[rows],
            lib[rows],
            threshold=0.2,
            graph=graph,
            soup=soup if np.isfinite(rho).any() else None,
        )
        pos[rows] = sparse.vstack([blk for _, blk in blocks]).toarray()
    for t in atlas.cell_types.index:
        m = types == t
        assert 0.2 * lib[m].sum() / 1e4 < 10  # shallow
        assert atlas.cell_types.loc[t, "fraction_from"] == f"knn calls of {m.sum():,} cells"
        np.testing.assert_allclose(atlas.fraction[t].to_numpy(), pos[m].mean(0), atol=1e-6)
        x = X[m].toarray()
        cpm = x.sum(0) / lib[m].sum() * 1e6
        np.testing.assert_allclose(atlas.mean[t].to_numpy(), cpm, rtol=1e-6)
        np.testing.assert_allclose(atlas.detected[t].to_numpy(), (x > 0).mean(0), atol=1e-6)
        assert atlas.cell_types.loc[t, "n_cells"] == m.sum()
        assert atlas.cell_types.loc[t, "n_donors"] == healthy.obs.loc[m, "donor_id"].nunique()
    # every type has <= 500 cells: all are sampled
    sampled = atlas.sample_positive(np.arange(healthy.n_vars))
    assert sampled.shape[0] == healthy.n_obs
    np.testing.assert_array_equal(sampled, pos)


def test_sample_calls_do_not_depend_on_the_chunk_size(
    files: dict[str, str], built: dict[str, Atlas]
) -> None:
    """--chunk-cells is a memory knob: the sampled cells' calls (and so the shallow types'
    fractions) come out the same with chunks of another size (up to each donor's soup, the
    median of its chunks' estimates, which chunks of another size estimate anew)."""
    kw = {"cell_type_key": "cell_type", "donor_key": "donor_id"}
    other = build_atlas(files["h5ad"], chunk_cells=10_000, **kw)
    _same(other, built["h5ad"])  # no soup estimable on these genes: identical


def test_deep_types_take_the_rate_model() -> None:
    """Types with enough reads (10x-like depth) take the rate model, recomputed per cell
    from the residuals; with no soup the builder can estimate (one type per chunk), none is
    taken off."""
    rng = np.random.default_rng(5)
    n, g = 300, 40
    lam = rng.gamma(0.8, 1.0, size=(2, g)) * 2  # CP10k
    libs = rng.integers(5_000, 15_000, size=2 * n)
    kind = np.repeat([0, 1], n)
    rates = rng.gamma(0.7, lam[kind] / 0.7)
    X = rng.poisson(rates * libs[:, None] / 1e4).astype(np.float32)
    X[:, -1] = libs - X[:, :-1].sum(1)  # the rest of the transcriptome, in one column
    a = ad.AnnData(
        X=sparse.csr_matrix(X),
        obs=pd.DataFrame(
            {"cell_type": np.where(kind == 0, "alpha", "beta"), "donor_id": "d1"},
            index=[f"c{i}" for i in range(2 * n)],
        ),
        var=pd.DataFrame(index=[f"G{j}" for j in range(g)]),
    )
    atlas = build_atlas(a, cell_type_key="cell_type", donor_key="donor_id", sample_cells=50)
    assert atlas.metadata["measured_fraction"]["ambient_contamination"]["estimated"] == 0
    Xd = X.astype(np.float64)
    lib = Xd.sum(1)
    for code, t in enumerate(("alpha", "beta")):
        m = kind == code
        assert atlas.cell_types.loc[t, "fraction_from"] == "rate model"
        frac = _rate_fraction_brute(Xd[m], lib[m], 0.2)
        np.testing.assert_allclose(atlas.fraction[t].to_numpy(), frac, rtol=1e-5, atol=1e-7)


def test_write_read_roundtrip(built: dict[str, Atlas], tmp_path: Path) -> None:
    atlas = built["h5ad"]
    atlas.write(tmp_path / "a")
    _same(load_atlas(tmp_path / "a"), atlas)


def test_cell_ontology_mapping(built: dict[str, Atlas]) -> None:
    ct = built["h5ad"].cell_types
    assert ct.loc["hematopoietic stem cell", "context"] == "marrow:HSC"
    assert ct.loc["hematopoietic stem cell", "mapped_by"] == "cell ontology"
    ref = load_reference()
    assert ct.loc["monocyte", "vital_weight"] == pytest.approx(
        float(ref.contexts.loc["marrow:Mono", "vital_weight"])
    )
    # non-CL labels fall back to the reference's own context names; nonsense is listed
    out, unmapped = map_cell_types(pd.DataFrame(index=["GMP", "NK", "zorblax cell"]))
    assert out.loc["GMP", "context"] == "marrow:GMP"
    assert out.loc["NK", "mapped_by"] == "context name"
    assert unmapped == ["zorblax cell"]
    assert out.loc["zorblax cell", "vital_weight"] == 1.0


def test_reference_with_atlas(built: dict[str, Atlas]) -> None:
    from antigenscout.tl._risk import healthy_risk

    atlas = built["h5ad"]
    small = atlas.cell_types["n_cells"] < 50
    with pytest.warns(AntigenscoutWarning, match="atlas cell types of fewer than 50 cells"):
        ref = load_reference().with_atlas(atlas)
    assert len(ref.metadata["atlas"]["small_replacements"]) == int(
        (small & atlas.cell_types["context"].isin(load_reference().contexts.index)).sum()
    )
    ids = [f"atlas:{t}" for t in atlas.cell_types.index]
    assert set(ids) <= set(ref.contexts.index)
    assert (ref.contexts.loc[ids, "source"] == "atlas:healthy").all()
    assert "marrow:HSC" not in ref.contexts.index  # superseded by the atlas
    assert "sc:Hepatocytes" in ref.contexts.index  # the rest of the body stays
    assert ref.pathology is load_reference().pathology  # tumour evidence is kept
    assert ref.cptac is load_reference().cptac
    assert ref.cptac is not None
    hr = healthy_risk(ref, threshold_cp10k=0.2)
    sym = atlas.genes["symbol"].to_numpy()
    g = "CD74" if "CD74" in sym else sym[int(np.argmax(atlas.fraction.to_numpy().sum(axis=1)))]
    want = atlas.fraction.loc[atlas.genes.index[sym == g][0], "monocyte"]
    assert hr.fraction.loc[g, "atlas:monocyte"] == pytest.approx(float(want))


def test_bad_input(healthy: ad.AnnData, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no column 'tissue'"):
        build_atlas(healthy, cell_type_key="tissue")
    bad = healthy.copy()
    bad.X = bad.X * 0.5
    with pytest.raises(InputError, match="non-integer"):
        build_atlas(bad, cell_type_key="cell_type")
    with pytest.raises(InputError, match="local:N"):
        build_atlas(healthy, cell_type_key="cell_type", dask="local:zero")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="lacks"):
        load_atlas(tmp_path / "empty")
    with pytest.raises(InputError, match="chunk_cells"):
        build_atlas(healthy, cell_type_key="cell_type", chunk_cells=1)


def test_plan_chunks_within_donor() -> None:
    donors = np.array([0, 1, 0, 0, 1, 0, 0])
    chunks = plan_chunks(donors, 2)
    assert [c.tolist() for c in chunks] == [[0, 5], [2, 6], [3], [1, 4]]


def test_soma_obs_filter(files: dict[str, str], healthy: ad.AnnData) -> None:
    donor = str(healthy.obs["donor_id"].iloc[0])
    a = build_atlas(
        files["soma"],
        cell_type_key="cell_type",
        donor_key="donor_id",
        obs_filter=f"donor_id == '{donor}'",
    )
    assert a.metadata["n_cells"] == int((healthy.obs["donor_id"] == donor).sum())
    assert (a.cell_types["n_donors"] == 1).all()
    with pytest.raises(InputError, match="SOMA inputs only"):
        build_atlas(files["h5ad"], cell_type_key="cell_type", obs_filter="x == 1")
    with pytest.raises(InputError, match="obs_filter"):
        build_atlas(files["soma"], cell_type_key="cell_type", obs_filter="nonsense ==")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*atlas cell types of fewer than")
def test_cli_atlas_build_then_rank_gates_profile(files: dict[str, str], tmp_path: Path) -> None:
    """The commands end to end on the real-cell atlas; every row says which source judged it."""
    from antigenscout.cli import main

    atlas_dir = tmp_path / "atlas"
    args = ["atlas", "build", files["h5ad"], "--cell-type-key", "cell_type"]
    assert main([*args, "--donor-key", "donor_id", "--out", str(atlas_dir)]) == 0
    run = json.loads((atlas_dir / "run.json").read_text())
    assert run["input"]["path"] == files["h5ad"]
    assert run["input"]["command_line"][1:3] == ["atlas", "build"]
    assert main(["atlas", "build", files["h5ad"], "--cell-type-key", "nope", "--out", "x"]) == 2
    tumour = tmp_path / "demo.h5ad"
    datasets.demo().write_h5ad(tumour)
    common = [str(tumour), "--malignant-key", "malignant=malignant", "--patient-key", "patient"]
    assert main(["rank", *common, "--atlas", str(atlas_dir), "--out", str(tmp_path / "r")]) == 0
    targets = pd.read_csv(tmp_path / "r" / "targets.tsv", sep="\t")
    risk = pd.read_csv(tmp_path / "r" / "risk.tsv", sep="\t")
    assert targets["worst_healthy_source"].notna().all()
    assert "atlas:healthy" in set(risk["source"])
    out = tmp_path / "g"
    gates = ["gates", *common, "--atlas", str(atlas_dir), "--candidates", "15", "--out", str(out)]
    assert main([*gates, "--max-genes", "2"]) == 0
    assert "worst_healthy_source" in pd.read_csv(out / "gates.tsv", sep="\t").columns
    assert main(["profile", "CD74", "--atlas", str(atlas_dir), "--out", str(tmp_path / "p")]) == 0
    prof = pd.read_csv(tmp_path / "p" / "profile.tsv", sep="\t")
    atlas_src = prof.loc[prof["context"].str.startswith("atlas:"), "source"]
    assert atlas_src.str.startswith("atlas:healthy").all()
    # the agonist's floor (0.05 CP10k) lies below the level the atlas's cells were called at
    assert atlas_src.str.contains("a lower bound at 0.05").all()
    assert main(["profile", "CD74", "--atlas", str(tmp_path / "none"), "--out", "y"]) == 2


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*atlas cell types of fewer than")
def test_cli_simulate_from_ranking_with_atlas(
    files: dict[str, str], built: dict[str, Atlas], tmp_path: Path
) -> None:
    """simulate --from RANKING --atlas: the healthy compartment's positive fraction is the
    atlas's measured fraction carried to the target's engagement threshold."""
    import json

    from antigenscout.cli import main

    atlas_dir = tmp_path / "atlas"
    built["h5ad"].write(atlas_dir)
    tumour = tmp_path / "demo.h5ad"
    datasets.demo().write_h5ad(tumour)
    run = tmp_path / "r"
    rank = ["rank", str(tumour), "--malignant-key", "malignant=malignant"]
    rank += ["--patient-key", "patient", "--highlight", "CD33", "--out", str(run)]
    assert main(rank) == 0  # no atlas: the embedded reference judges the ranking's contexts
    targets = pd.read_csv(run / "targets.tsv", sep="\t", index_col=0)
    engage = float(targets.loc["CD33", "engagement_threshold_cp10k"])
    sim = ["simulate", "--model", "cart-leukaemia", "--from", str(run), "--target", "CD33"]
    sim += ["--typical", "--days", "30", "--allow-other-indication"]  # an AML ranking
    out = tmp_path / "s"
    assert main([*sim, "--atlas", str(atlas_dir), "--healthy", "monocyte", "--out", str(out)]) == 0
    sc = json.loads((out / "summary.json").read_text())["scenario"]
    f0 = float(built["h5ad"].fraction.loc["CD33", "monocyte"])  # measured at 0.2 CP10k
    assert sc["healthy_cell_type"] == "monocyte"
    assert sc["healthy_positive_fraction_source"] == "atlas:healthy"
    assert sc["healthy_positive_fraction"] == pytest.approx(f0 ** (engage / 0.2), rel=1e-6)
    # the embedded context the atlas's monocytes replace is no longer a choice
    risk = pd.read_csv(run / "risk.tsv", sep="\t")
    replaced = built["h5ad"].cell_types.loc["monocyte", "context"]
    name = risk.loc[(risk["target"] == "CD33") & (risk["context"] == replaced), "name"]
    assert len(name) == 1
    bad = [*sim, "--atlas", str(atlas_dir), "--healthy", str(name.iloc[0]), "--out", str(out)]
    assert main(bad) == 2
    # the default compartment (most engaged with a published turnover) may be an atlas type
    assert main([*sim, "--atlas", str(atlas_dir), "--out", str(tmp_path / "s1")]) == 0
    # without --atlas the ranking's own row is used
    assert main([*sim, "--healthy", str(name.iloc[0]), "--out", str(tmp_path / "s0")]) == 0
    sc0 = json.loads((tmp_path / "s0" / "summary.json").read_text())["scenario"]
    assert sc0["healthy_positive_fraction_source"] != "atlas:healthy"
    # --atlas needs --from; a missing atlas is one line and exit 2
    assert main(["simulate", "--model", "cart-leukaemia", "--atlas", str(atlas_dir)]) == 2
    assert main([*sim, "--atlas", str(tmp_path / "none"), "--out", str(out)]) == 2


def test_a_killed_build_resumes_to_identical_tables(
    files: dict[str, str], built: dict[str, Atlas], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build stopped after its first chunks restarts from the chunks it finished (saved in
    ``resume``), computes only the others and gives the same tables; the folder goes away."""
    from antigenscout.atlas import _build

    kw = {"cell_type_key": "cell_type", "donor_key": "donor_id", "chunk_cells": 400}
    n_chunks = built["h5ad"].metadata["build"]["chunks"]
    assert n_chunks >= 4
    real = _build._chunk_sums
    calls: list[int] = []

    def dies_after_two(src, rows, types, donor):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the kill
        calls.append(rows.size)
        return real(src, rows, types, donor)

    resume = tmp_path / "chunks"
    monkeypatch.setattr(_build, "_chunk_sums", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_atlas(files["h5ad"], resume=resume, **kw)
    assert len(list(resume.glob("chunk_*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(_build, "_chunk_sums", lambda *a: (calls.append(1), real(*a))[1])
    again = build_atlas(files["h5ad"], resume=resume, **kw)
    assert len(calls) == n_chunks - 2  # only the unfinished chunks
    assert again.metadata["build"]["chunks_resumed"] == 2
    _same(again, built["h5ad"])
    assert not resume.exists()
    # a folder left by a build of another input or plan is not used; a damaged chunk file
    # is computed again; a folder holding anything else is refused, never emptied
    resume.mkdir()
    (resume / "build.json").write_text('{"key": "other"}')
    np.savez(resume / "chunk_0.npz", codes=np.zeros(1))
    calls.clear()
    _same(build_atlas(files["h5ad"], resume=resume, **kw), built["h5ad"])
    assert len(calls) == n_chunks
    monkeypatch.setattr(_build, "_chunk_sums", dies_after_two)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        build_atlas(files["h5ad"], resume=resume, **kw)
    (resume / "chunk_1.npz").write_bytes(b"")  # cut short
    monkeypatch.setattr(_build, "_chunk_sums", lambda *a: (calls.append(1), real(*a))[1])
    calls.clear()
    _same(build_atlas(files["h5ad"], resume=resume, **kw), built["h5ad"])
    assert len(calls) == n_chunks - 1
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep")
    with pytest.raises(InputError, match="holds other files"):
        build_atlas(files["h5ad"], resume=mine, **kw)
    assert (mine / "precious.txt").read_text() == "keep"


def test_duplicates_no_sample_and_counts_too_large(healthy: ad.AnnData) -> None:
    """Repeated (cell, gene) entries are added up first (the same tables as the canonical
    matrix); --sample-cells 0 builds without sampled cells; counts past exact int64 sums are
    refused in one line."""
    kw = {"cell_type_key": "cell_type", "donor_key": "donor_id"}
    X = sparse.csr_matrix(healthy.X)
    half = np.floor(X.data / 2)  # each count split into two entries of the same cell and gene
    data = np.column_stack([half, X.data - half]).ravel()
    split = sparse.csr_matrix((data, np.repeat(X.indices, 2), X.indptr * 2), shape=X.shape)
    split.has_canonical_format = False
    assert split.nnz == 2 * X.nnz
    twin = healthy.copy()
    twin.X = split
    _same(build_atlas(twin, **kw), build_atlas(healthy, **kw))
    bare = build_atlas(healthy, sample_cells=0, **kw)
    assert bare.sample_types.size == 0
    assert set(bare.cell_types["fraction_from"]) == {"rate model (shallow; no sampled cells)"}
    huge = healthy.copy()
    big = sparse.csr_matrix(huge.X, dtype=np.float64)
    big.data[:] = 4e9
    huge.X = big
    with pytest.raises(InputError, match="too large to sum exactly"):
        build_atlas(huge, **kw)
