"""Data scaling laws: fit error(x) = alpha * x^-c + eps against examples seen (arXiv 2502.07617 §4.1).

The paper fits one law per (model, data scale, metric) to the error at the cooled-down checkpoints
and reports the exponent c and the limit eps (Tables 1, 8, 9). We fit the plain power law (the
alpha = 0 case of [2]'s estimator M4) by bounded least squares, weighted by the standard errors
when they are known, and give bootstrap confidence intervals: refits to replicates of the curve. The
figures stage passes replicates from resampling the test images once for all checkpoints of a data
scale (uncertainty.Estimates.fit_draws), so that each replicate is one coherent curve; without them
each point is redrawn independently from N(value, se) (a parametric bootstrap).

Three checkpoints determine the three parameters (the law then passes through the points when they
fall and bend the way a power law can); the cpu profile has 5 cool-downs per run, gpu/tpu the paper's 9.
Only the bootstrap says how well c and eps are pinned down: a curve that does not bend within the
budgets puts eps at its bound 0 (or c at 0), and the Table 1 LaTeX marks such parameters as not identified.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

C_MAX = 5.0  # exponents above this are indistinguishable from a step (the paper's largest is 1.34)
EPS_MAX = 100.0  # an error in % cannot exceed 100
_C_GRID = np.linspace(0.0, C_MAX, 501)  # profile over c: the law is linear in (alpha, eps) at fixed c


@dataclass(frozen=True)
class PowerLawFit:
    """error(x) = alpha * x^-c + eps, with x in examples seen and errors in %.

    alpha is in the original units (error % · examples^c); alpha_at_max = alpha * x_max^-c is the
    reducible error left at the largest budget fitted, in % (easier to read). *_ci are
    (low, high) percentile intervals from the bootstrap, NaN when it could not run.
    """

    alpha: float
    c: float
    eps: float
    x_max: float
    n_points: int
    rss: float  # weighted residual sum of squares at the optimum
    weighted: bool
    alpha_ci: tuple[float, float] = (np.nan, np.nan)
    c_ci: tuple[float, float] = (np.nan, np.nan)
    eps_ci: tuple[float, float] = (np.nan, np.nan)
    n_boot: int = 0
    level: float = 0.95

    @property
    def alpha_at_max(self) -> float:
        return self.alpha * self.x_max ** -self.c

    def predict(self, x) -> np.ndarray:
        """Error in % at examples seen x."""
        return self.alpha * np.asarray(x, dtype=float) ** -self.c + self.eps


def _profile(u: np.ndarray, y: np.ndarray, w: np.ndarray, grid=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best (alpha, c, eps, sse) on a c grid for each row of y [B, n] (u [n] scaled x, w [n] weights);
    grid: [G] shared, or [B, G] one per row (default the global _C_GRID).

    At fixed c the problem is a convex quadratic in (alpha, eps) on the box alpha >= 0,
    0 <= eps <= EPS_MAX: its minimum is the unconstrained one when feasible, else on an edge,
    where clipping the one-dimensional minimiser is exact.
    """
    grid = _C_GRID if grid is None else np.asarray(grid, dtype=float)
    grid = np.broadcast_to(grid, (len(y), grid.shape[-1]))     # [B, G]
    b = u[None, None, :] ** -grid[..., None]                  # [B, G, n]
    yb = y[:, None, :]                                        # [B, 1, n]
    S1, Sy = w.sum(), (w * y).sum(-1)[:, None]                # scalar, [B, 1]
    Sb, Sbb = (w * b).sum(-1), (w * b * b).sum(-1)            # [B, G]
    Sby = (w * b * yb).sum(-1)                                # [B, G]
    det = Sbb * S1 - Sb ** 2
    ok = det > 1e-9 * Sbb * S1
    with np.errstate(divide="ignore", invalid="ignore"):
        a_free = np.where(ok, (Sby * S1 - Sb * Sy) / det, np.nan)
        e_free = np.where(ok, (Sbb * Sy - Sb * Sby) / det, np.nan)
    free_ok = ok & (a_free >= 0) & (e_free >= 0) & (e_free <= EPS_MAX)
    shape = Sby.shape
    candidates = [
        (np.where(free_ok, a_free, np.nan), np.where(free_ok, e_free, np.nan)),
        (np.zeros(shape), np.broadcast_to(np.clip(Sy / S1, 0, EPS_MAX), shape)),
        (np.maximum(Sby / Sbb, 0), np.zeros(shape)),
        (np.maximum((Sby - EPS_MAX * Sb) / Sbb, 0), np.full(shape, EPS_MAX)),
    ]
    best_sse = np.full(shape, np.inf)
    best_a, best_e = np.zeros(shape), np.zeros(shape)
    for a, e in candidates:
        sse = (w * (yb - a[..., None] * b - e[..., None]) ** 2).sum(-1)
        better = np.nan_to_num(sse, nan=np.inf) < best_sse
        best_sse = np.where(better, sse, best_sse)
        best_a, best_e = np.where(better, a, best_a), np.where(better, e, best_e)
    j = best_sse.argmin(-1)
    rows = np.arange(len(y))
    return best_a[rows, j], grid[rows, j], best_e[rows, j], best_sse[rows, j]


def _polish(u, y, w, a0, c0, e0) -> tuple[float, float, float]:
    """Refine a grid optimum (c to 0.01) with scipy's bounded least squares (kept only if it is better)."""
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([np.inf, C_MAX, EPS_MAX])
    x0 = np.clip([a0, c0, e0], lo + 1e-9, hi - 1e-9)
    sw, log_u = np.sqrt(w), np.log(u)

    def jac(p):
        b = u ** -p[1]
        return np.stack([sw * b, -sw * p[0] * b * log_u, sw], axis=1)

    res = least_squares(lambda p: sw * (p[0] * u ** -p[1] + p[2] - y), x0, jac=jac, bounds=(lo, hi), method="trf")
    sse = lambda p: float((w * (p[0] * u ** -p[1] + p[2] - y) ** 2).sum())  # noqa: E731
    return tuple(res.x) if sse(res.x) < sse(np.array([a0, c0, e0])) else (a0, c0, e0)


def fit_power_law(
    examples_seen, error_pct, se=None, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
    where: str = "input", draws=None,
) -> PowerLawFit:
    """Fit error_pct = alpha * examples_seen^-c + eps (errors in %, examples_seen > 0).

    se (same unit as error_pct) weights the fit by 1/se² when every point has a finite se > 0.
    The CIs refit replicates of the points: `draws` [B, n_points] when given (e.g. the test images
    resampled once for every checkpoint; n_boot and seed are then unused), else n_boot parametric
    draws from N(value, se), seeded, where a point with NaN or zero se is held fixed and with no se
    at all the CIs are NaN. `where` names the data in error messages. Needs at least 3 points.
    """
    x = np.asarray(examples_seen, dtype=float)
    y = np.asarray(error_pct, dtype=float)
    s = np.full_like(y, np.nan) if se is None else np.asarray(se, dtype=float)
    if not (x.shape == y.shape == s.shape and x.ndim == 1):
        raise ValueError(f"{where}: examples_seen, error_pct and se must be 1-D of equal length, "
                         f"got shapes {x.shape}, {y.shape}, {s.shape}")
    if draws is not None:
        draws = np.asarray(draws, dtype=float)
        if draws.ndim != 2 or draws.shape[1] != len(y):
            raise ValueError(f"{where}: draws must be [B, {len(y)}] (one column per point), got {draws.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, s = x[keep], y[keep], s[keep]
    if draws is not None:
        draws = draws[:, keep][np.isfinite(draws[:, keep]).all(axis=1)]
    if len(np.unique(x)) < 3:
        raise ValueError(f"{where}: a power law α·x^-c + ε has 3 parameters and needs at least 3 distinct "
                         f"examples_seen, got {sorted(set(x.tolist()))}")
    if (x <= 0).any():
        raise ValueError(f"{where}: examples_seen must be > 0, got {x[x <= 0].tolist()}")
    x_max = float(x.max())
    u = x / x_max  # scaled so that alpha stays of the order of the errors during the fit
    weighted = bool(np.all(np.isfinite(s) & (s > 0)))
    w = 1.0 / s ** 2 if weighted else np.ones_like(y)
    w = w / w.mean()

    a, c, e, _ = (v[0] for v in _profile(u, y[None], w))
    a, c, e = _polish(u, y, w, a, c, e)
    rss = float((w * (a * u ** -c + e - y) ** 2).sum())
    to_original = lambda a_u, c_u: a_u * x_max ** c_u  # noqa: E731  (alpha·(x/x_max)^-c = alpha·x_max^c·x^-c)

    noise = np.where(np.isfinite(s), s, 0.0)
    if draws is None and n_boot > 0 and noise.any():
        rng = np.random.default_rng(seed)
        draws = y[None] + noise[None] * rng.standard_normal((n_boot, len(y)))
    if draws is None or not len(draws):
        return PowerLawFit(float(to_original(a, c)), float(c), float(e), x_max, len(x), rss, weighted,
                           n_boot=0, level=level)
    n_boot = len(draws)
    # Replicates: the global c grid (step 0.01), then a local grid of step 0.0001 around each optimum,
    # alpha and eps exact at every c; vectorised, where polishing each of 1000 replicates per fit with
    # least squares cost minutes per stage.
    step = _C_GRID[1] - _C_GRID[0]
    local = np.linspace(-step, step, 201)
    ab, cb, eb = [], [], []
    for chunk in np.array_split(draws, max(1, n_boot // 250)):
        _, c0, _, _ = _profile(u, chunk, w)
        a1, c1, e1, _ = _profile(u, chunk, w, np.clip(c0[:, None] + local[None, :], 0.0, C_MAX))
        ab.append(a1), cb.append(c1), eb.append(e1)
    ab, cb, eb = np.concatenate(ab), np.concatenate(cb), np.concatenate(eb)
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    ci = lambda v: tuple(float(t) for t in np.percentile(v, q))  # noqa: E731
    return PowerLawFit(float(to_original(a, c)), float(c), float(e), x_max, len(x), rss, weighted,
                       alpha_ci=ci(to_original(ab, cb)), c_ci=ci(cb), eps_ci=ci(eb), n_boot=n_boot, level=level)


def fit_tasks(tidy: pd.DataFrame, n_boot: int = 1000, seed: int = 0, metric: str = "error_pct",
              draws=None) -> pd.DataFrame:
    """One fit per (data scale, model, task) of a tidy results table (rows of `metric`, x = examples_seen).

    Runs that share (data_pct, model) are seed replicates: the curve fitted is their mean per
    checkpoint (se combined as for a mean of independent runs). draws: optional mapping
    (model, data_pct, examples_seen, task) -> [B] replicates of that mean (uncertainty.Estimates.
    fit_draws); a fit whose every point has them refits those, else the parametric bootstrap runs
    with a seed derived from `seed` and the (run, task) names (reproducible, independent draws).
    Returns a row per (run, data_pct, model, task), run naming the runs ("s10+s10_seed1"), with alpha,
    c, eps, their CIs (*_lo, *_hi), n_points, ci ("bootstrap" | "parametric" | "") and `note` saying
    why a fit is missing (fewer than 3 checkpoints, or a failed fit).
    """
    rows = []
    d = tidy[tidy["metric"] == metric]
    for (pct, model, task), g in d.groupby(["data_pct", "model", "task"], sort=True):
        run = "+".join(sorted(g["run"].unique()))
        g = g.groupby("examples_seen", sort=True).agg(
            value=("value", "mean"), se=("se", lambda v: np.sqrt((v ** 2).sum()) / len(v))).reset_index()
        row = {"run": run, "data_pct": pct, "model": model, "task": task, "n_points": len(g), "note": "", "ci": ""}
        reps = None
        if draws is not None and all((model, pct, x, task) in draws for x in g["examples_seen"]):
            reps = np.stack([draws[(model, pct, x, task)] for x in g["examples_seen"]], axis=1)
        try:
            f = fit_power_law(g["examples_seen"], g["value"], g["se"], n_boot=n_boot,
                              seed=zlib.crc32(f"{seed}/{run}/{task}".encode()), where=f"run {run} task {task}",
                              draws=reps)
        except ValueError as e:
            rows.append(row | {"note": str(e)})
            continue
        row |= {"alpha": f.alpha, "c": f.c, "eps": f.eps, "alpha_at_max": f.alpha_at_max, "x_max": f.x_max,
                "alpha_lo": f.alpha_ci[0], "alpha_hi": f.alpha_ci[1], "c_lo": f.c_ci[0], "c_hi": f.c_ci[1],
                "eps_lo": f.eps_ci[0], "eps_hi": f.eps_ci[1], "rss": f.rss, "weighted": f.weighted,
                "ci": "" if not f.n_boot else "bootstrap" if reps is not None else "parametric"}
        rows.append(row)
    cols = ["run", "data_pct", "model", "task", "alpha", "c", "eps", "alpha_at_max", "x_max", "alpha_lo",
            "alpha_hi", "c_lo", "c_hi", "eps_lo", "eps_hi", "rss", "weighted", "n_points", "ci", "note"]
    return pd.DataFrame(rows).reindex(columns=cols)
