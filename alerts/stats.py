"""One-sided tail probabilities for the detector, in plain Python (no scipy at run time)."""

from __future__ import annotations

import math


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    terms = [base - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q for i in range(k, n + 1)]
    return min(1.0, math.exp(_logsumexp(terms)))


def poisson_sf(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    if mean <= 0.0:
        return 0.0
    log_mean = math.log(mean)
    below = [i * log_mean - mean - math.lgamma(i + 1) for i in range(k)]
    cdf = math.exp(_logsumexp(below))
    if cdf < 0.5:
        return 1.0 - cdf
    upper = [i * log_mean - mean - math.lgamma(i + 1) for i in range(k, k + 10 * int(mean + 10) + 50)]
    return min(1.0, math.exp(_logsumexp(upper)))
