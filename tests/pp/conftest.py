"""Fixtures of the positivity tests."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from positivity_data import make_data


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    return make_data()
