"""The classifier filter's head: P(aligned | image, text) from a web-trained SigLIP's two embeddings.

A pair's features are the elementwise product of its L2-normalised image and text embeddings (their
sum is the cosine) and the cosine itself; a logistic regression with an L2 penalty is fitted to pairs
labelled aligned (1) or misaligned (0), by maximum likelihood (scipy's L-BFGS). How well the head
separates held-out labelled pairs (AUC, accuracy) is the filter's own quality, a separate number from
the quality of the subset it selects (Fang et al. 2023).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats


def features(zi: np.ndarray, zt: np.ndarray) -> np.ndarray:
    """[N, D + 1] float64: zi * zt and their cosine (zi, zt: [N, D] L2-normalised embeddings)."""
    prod = np.asarray(zi, np.float64) * np.asarray(zt, np.float64)
    return np.concatenate([prod, prod.sum(1, keepdims=True)], axis=1)


@dataclass
class AlignmentHead:
    """A fitted logistic regression over `features` (standardised with the training set's mean and sd)."""
    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    l2: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> AlignmentHead:
        """Fit to features x [N, F] and labels y [N] in {0, 1} (both classes present)."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError(f"features {x.shape} and labels {y.shape} do not match")
        if not ((y == 0) | (y == 1)).all() or y.min() == y.max():
            raise ValueError(f"labels must be 0/1 with both classes present; got {np.unique(y).tolist()}")
        mean, scale = x.mean(0), x.std(0) + 1e-8
        u = (x - mean) / scale

        def loss(w):
            z = u @ w[:-1] + w[-1]
            nll = np.mean(np.logaddexp(0, z) - y * z)
            p = special.expit(z)
            grad = np.concatenate([u.T @ (p - y) / len(y) + l2 * w[:-1], [np.mean(p - y)]])
            return nll + 0.5 * l2 * w[:-1] @ w[:-1], grad

        res = optimize.minimize(loss, np.zeros(u.shape[1] + 1), jac=True, method="L-BFGS-B")
        if not res.success:
            raise RuntimeError(f"the classifier head did not converge: {res.message}")
        return cls(res.x[:-1], float(res.x[-1]), mean, scale, l2)

    def logit(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.weights + self.bias

    def prob(self, x: np.ndarray) -> np.ndarray:
        """P(aligned) per row of features x."""
        return special.expit(self.logit(x))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of an aligned pair > score of a misaligned one), ties counted half."""
    labels = np.asarray(labels).astype(bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
