import math

import pytest

from alerts.stats import binomial_sf, poisson_sf


def test_binomial_tail_matches_direct_sums() -> None:
    n, p = 20, 0.3
    direct = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(9, n + 1))
    assert binomial_sf(9, n, p) == pytest.approx(direct, rel=1e-9)
    assert binomial_sf(0, n, p) == 1.0
    assert binomial_sf(21, n, p) == 0.0
    assert binomial_sf(3, 10, 0.0) == 0.0 and binomial_sf(3, 10, 1.0) == 1.0


def test_poisson_tail_matches_direct_sums() -> None:
    mean = 4.0
    direct = 1 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(12))
    assert poisson_sf(12, mean) == pytest.approx(direct, rel=1e-6)
    assert poisson_sf(2, 4.0) == pytest.approx(1 - math.exp(-4) * (1 + 4), rel=1e-9)
    assert poisson_sf(0, 3.0) == 1.0 and poisson_sf(3, 0.0) == 0.0


def test_large_windows_do_not_overflow() -> None:
    assert 0.0 <= binomial_sf(2600, 10_000, 0.25) < 0.05
    assert poisson_sf(400, 300.0) < 1e-6
