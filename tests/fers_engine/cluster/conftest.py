"""One LocalCluster of two worker processes (one BLAS thread each) for the cluster tests."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

pytest.importorskip("distributed")

from fers_engine.synthetic import make_scene, write_scene  # noqa: E402


@pytest.fixture(scope="session")
def client():
    from fers_engine.cluster import cluster_client

    with cluster_client(workers=2, threads=1) as c:
        yield c


@pytest.fixture
def scenes(tmp_path) -> SceneMaker:
    return SceneMaker(tmp_path)


class SceneMaker:
    """Generated GeoTIFF scenes with implanted targets, written under one test's folder."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, count: int, rows: int = 40, cols: int = 36, bands: int = 24) -> List[Path]:
        paths = []
        for i in range(count):
            scene = make_scene(rows=rows, cols=cols, bands=bands, seed=10 + i, n_targets=5)
            path = self.root / f"scene{i}.tif"
            write_scene(scene, path, self.root / f"truth{i}.tif")
            paths.append(path)
        return paths
