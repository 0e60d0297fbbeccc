"""Copy the clinical record's tables into the package, so ``antigenscout benchmark`` runs
after a plain install from any folder.

Reads ``../shared/benchmark/{validated_targets,toxicities,toxicities_more}.tsv`` and writes
them unchanged to ``src/antigenscout/benchmark/data/`` with ``PROVENANCE.json`` (origin,
SHA-256, date). These rows are the answer key: they score the engine and feed nothing
(README, "Data"). Run::

    python scripts/build_benchmark_data.py [--shared ../shared]
"""  # noqa: D205

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "antigenscout" / "benchmark" / "data"
TABLES = ("validated_targets.tsv", "toxicities.tsv", "toxicities_more.tsv")


def main() -> None:  # noqa: D103
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    a = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in TABLES:
        src = a.shared / "benchmark" / name
        shutil.copyfile(src, OUT / name)
        files[name] = {
            "origin": f"shared/benchmark/{name} (the team's curated clinical record)",
            "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
            "bytes": src.stat().st_size,
        }
    prov = {
        "built": time.strftime("%Y-%m-%d"),
        "by": "scripts/build_benchmark_data.py",
        "use": "evaluation only: these rows score the engine and set nothing in it",
        "files": files,
    }
    (OUT / "PROVENANCE.json").write_text(json.dumps(prov, indent=2) + "\n")
    print(f"wrote {len(files)} tables to {OUT}")


if __name__ == "__main__":
    main()
