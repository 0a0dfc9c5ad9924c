"""The paper's evaluation protocols (arXiv 2502.07617 §3.3) as pure functions of embeddings and labels.

Embeddings are L2-normalised rows: images `zimg` [N, D], texts `ztxt` [M, D], classes `zcls` [C, D].
Scores are fractions in [0, 1]; `groups.error_pct` turns them into the error % the paper reports.
Everything is numpy (float64) so a metric is exact and identical on every machine; jax arrays are
accepted anywhere an array is.
"""
from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence

import numpy as np

from vlscale.config import OCCUPATION_PAIRS

# big_vision's few-shot defaults: a constant bias feature large enough to be almost unregularised,
# and one fixed ridge strength (big_vision selects among a grid on held-out data; the paper does not
# say, arXiv 2502.07617 §3.3, so one value keeps the probe a pure function).
BIAS_FEATURE = 100.0
DEFAULT_L2 = 2.0**10
STD_EPS = 1e-5

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def canonicalize(name: str) -> str:
    """Class name as the zero-shot prompts use it: '_' as space, punctuation dropped, lowercase,
    whitespace collapsed ("Yorkshire_Terrier," -> "yorkshire terrier")."""
    name = name.replace("_", " ").translate(_PUNCTUATION).lower()
    return re.sub(r"\s+", " ", name).strip()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def class_embeddings(
    embed_texts_fn: Callable[[list[str]], np.ndarray],
    class_names: Sequence[str],
    templates: Sequence[str],
) -> np.ndarray:
    """Zero-shot classifier [C, D]: each template ("a photo of a {}.") filled with each canonical class
    name, embedded by `embed_texts_fn(list[str]) -> [N, D]` (L2-normalised rows), averaged over
    templates and re-normalised. One call embeds all C * T prompts, class-major."""
    if not class_names or not templates:
        raise ValueError(f"need classes and templates, got {len(class_names)} classes, {len(templates)} templates")
    for template in templates:
        if "{}" not in template:
            raise ValueError(f"template {template!r} has no '{{}}' for the class name")
    prompts = [t.format(canonicalize(c)) for c in class_names for t in templates]
    z = np.asarray(embed_texts_fn(prompts), dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != len(prompts):
        raise ValueError(f"embed_texts_fn returned shape {z.shape} for {len(prompts)} prompts; expected [N, D]")
    return _unit_rows(z.reshape(len(class_names), len(templates), -1).mean(axis=1))


def tie_shared_hits(scores, target) -> np.ndarray:
    """Per-row success of picking `target` by highest score, ties split evenly: 1 if the target scores
    strictly highest, 1/m if it ties with m - 1 others at the top, else 0. scores [N, C], target [N]
    ints. Identical embeddings (a collapsed model, identical captions) thus give chance, neither a
    free hit nor a sure miss."""
    scores = np.asarray(scores, np.float64)
    own = scores[np.arange(scores.shape[0]), np.asarray(target)]
    top = scores.max(axis=1)
    ties = np.sum(scores == top[:, None], axis=1)
    return np.where(own == top, 1.0 / ties, 0.0)


def zero_shot_hits(zimg, zcls, labels) -> np.ndarray:
    """Zero-shot classification, per image. zimg [N, D], zcls [C, D], labels [N] ints in [0, C).
    Returns [N] float: 1 where the true class has the highest cosine similarity (ties split, see
    tie_shared_hits)."""
    zimg, zcls, labels = np.asarray(zimg, np.float64), np.asarray(zcls, np.float64), np.asarray(labels)
    if labels.shape != (zimg.shape[0],):
        raise ValueError(f"labels shape {labels.shape} does not match {zimg.shape[0]} images")
    return tie_shared_hits(zimg @ zcls.T, labels)


def zero_shot_accuracy(zimg, zcls, labels) -> tuple[float, np.ndarray]:
    """Zero-shot classification. zimg [N, D], zcls [C, D], labels [N] ints in [0, C).
    Returns (accuracy with ties split, predictions [N]: the class of highest cosine similarity)."""
    hits = zero_shot_hits(zimg, zcls, labels)
    predictions = np.argmax(np.asarray(zimg, np.float64) @ np.asarray(zcls, np.float64).T, axis=1)
    return float(hits.mean()), predictions


def _hit_within(k: int, better, tied_others, tied_own) -> np.ndarray:
    """P(at least one of `tied_own` positives lands in the top k) when `better` candidates score strictly
    higher and the positives tie with `tied_others` negatives, in uniformly random order among the
    tied: 1 - C(t, j) / C(t + m, j) with j = k - better free places, t negatives, m positives."""
    better, t, m = (np.asarray(a, np.float64) for a in (better, tied_others, tied_own))
    j = k - better
    miss = np.ones_like(t)
    for i in range(k):  # the product over the j places; places beyond j leave it unchanged
        step = np.where(i < j, np.clip((t - i) / np.maximum(t + m - i, 1.0), 0.0, 1.0), 1.0)
        miss = miss * step
    return np.where(j <= 0, 0.0, 1.0 - miss)


def retrieval_hits(zimg, ztxt, text_to_image, ks: Sequence[int] = (1, 5, 10)) -> dict[str, np.ndarray]:
    """Zero-shot retrieval Recall@k per query. zimg [N, D], ztxt [M, D], text_to_image [M]: the image
    each caption describes (every image needs at least one). Image->text is a hit when ANY of the
    image's captions is among its top k texts; text->image when the caption's image is among its top k
    images. Ties are broken uniformly at random, in expectation (`_hit_within`): a caption identical to
    another image's neither wins nor loses for free, and random embeddings give chance.
    Returns {"i2t@k": [N] float, "t2i@k": [M] float} for each k."""
    zimg, ztxt = np.asarray(zimg, np.float64), np.asarray(ztxt, np.float64)
    text_to_image = np.asarray(text_to_image)
    n = zimg.shape[0]
    if text_to_image.shape != (ztxt.shape[0],):
        raise ValueError(f"text_to_image shape {text_to_image.shape} does not match {ztxt.shape[0]} texts")
    if text_to_image.min() < 0 or text_to_image.max() >= n:
        raise ValueError(
            f"text_to_image values must lie in [0, {n}), got [{text_to_image.min()}, {text_to_image.max()}]"
        )
    uncaptioned = np.setdiff1d(np.arange(n), text_to_image)
    if uncaptioned.size:
        raise ValueError(f"images without a caption: {uncaptioned[:10].tolist()} (of {uncaptioned.size})")
    sim = zimg @ ztxt.T  # [N, M]
    own = text_to_image[None, :] == np.arange(n)[:, None]  # [N, M]: caption j describes image i
    best_own = np.where(own, sim, -np.inf).max(axis=1)[:, None]  # [N, 1]
    i2t = (np.sum(~own & (sim > best_own), axis=1), np.sum(~own & (sim == best_own), axis=1),
           np.sum(own & (sim == best_own), axis=1))
    target = sim[text_to_image, np.arange(len(text_to_image))][None, :]  # [1, M]
    t2i = (np.sum(~own & (sim > target), axis=0), np.sum(~own & (sim == target), axis=0), 1)
    out = {}
    for k in ks:
        out[f"i2t@{k}"] = _hit_within(k, *i2t)
        out[f"t2i@{k}"] = _hit_within(k, *t2i)
    return out


def retrieval_recall(zimg, ztxt, text_to_image, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k both ways (the means of retrieval_hits): {"i2t@k": ..., "t2i@k": ...}."""
    return {k: float(v.mean()) for k, v in retrieval_hits(zimg, ztxt, text_to_image, ks).items()}


def _draw_shots(labels: np.ndarray, num_classes: int, shots: int, seed: int) -> np.ndarray:
    """Indices [num_classes * shots] of `shots` examples of every class, drawn without replacement."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(num_classes):
        pool = np.flatnonzero(labels == c)
        if pool.size < shots:
            raise ValueError(f"class {c} has {pool.size} training examples; {shots} shots needed")
        picked.append(rng.choice(pool, size=shots, replace=False))
    return np.concatenate(picked)


def _ridge_predict(train_x, train_y, test_x, num_classes: int, l2: float) -> np.ndarray:
    """Closed-form ridge regression onto ±1 one-vs-rest targets; returns test predictions [N_test]."""
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0) + STD_EPS

    def features(x):
        x = (x - mean) / std
        return np.concatenate([x, np.full((x.shape[0], 1), BIAS_FEATURE)], axis=1)

    x = features(train_x)  # [n, D+1]
    targets = 2.0 * np.eye(num_classes)[train_y] - 1.0  # [n, C]
    n, d = x.shape
    if n >= d:  # (XᵀX + λI)⁻¹ Xᵀ Y
        w = np.linalg.solve(x.T @ x + l2 * np.eye(d), x.T @ targets)
    else:  # the same solution through the smaller n×n system: Xᵀ (XXᵀ + λI)⁻¹ Y
        w = x.T @ np.linalg.solve(x @ x.T + l2 * np.eye(n), targets)
    return np.argmax(features(test_x) @ w, axis=1)


def linear_probe_hits(
    train_x,
    train_y,
    test_x,
    test_y,
    num_classes: int,
    l2: float = DEFAULT_L2,
    shots: int = 10,
    seeds: Sequence[int] = (0, 1, 2),
) -> np.ndarray:
    """Few-shot linear probe as big_vision's closed-form least squares on frozen embeddings, per test
    image: the share of shot draws that classify it right.

    train_x [N, D], train_y [N] ints in [0, num_classes); test_x [T, D], test_y [T]. For each seed,
    `shots` examples per class are drawn from the training set; features are standardised with that
    draw's mean and std, a constant bias feature is appended, and a ridge regression (strength `l2`)
    onto ±1 one-vs-rest targets is solved in closed form. Returns [T] float in [0, 1].
    """
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if train_y.shape != (train_x.shape[0],) or test_y.shape != (test_x.shape[0],):
        raise ValueError(f"labels {train_y.shape}/{test_y.shape} do not match features {train_x.shape}/{test_x.shape}")
    hits = np.zeros(test_y.shape, np.float64)
    for seed in seeds:
        idx = _draw_shots(train_y, num_classes, shots, seed)
        hits += _ridge_predict(train_x[idx], train_y[idx], test_x, num_classes, l2) == test_y
    return hits / len(seeds)


def linear_probe_accuracy(train_x, train_y, test_x, test_y, num_classes: int, **probe_kwargs) -> float:
    """Mean accuracy of linear_probe_hits (same arguments)."""
    return float(linear_probe_hits(train_x, train_y, test_x, test_y, num_classes, **probe_kwargs).mean())


def performance_disparity(correct, groups) -> tuple[float, dict]:
    """Maximum accuracy gap across subgroups (Dollar Street income groups, GeoDE regions).
    correct [N] per-image success in [0, 1] (bool or tie-split float), groups [N] hashable group labels.
    Returns (max minus min of the per-group accuracies, {group: accuracy}). Noise alone makes the
    gap positive: analysis/uncertainty.py sets it beside a permutation null."""
    correct, groups = np.asarray(correct, np.float64), np.asarray(groups)
    if correct.shape != groups.shape or correct.ndim != 1:
        raise ValueError(f"correct {correct.shape} and groups {groups.shape} must be equal-length vectors")
    per_group = {(g.item() if isinstance(g, np.generic) else g): float(correct[groups == g].mean())
                 for g in np.unique(groups)}
    return max(per_group.values()) - min(per_group.values()), per_group


def preference(z, z_a, z_b) -> np.ndarray:
    """Per row of z [N, D]: 1 if closer to z_a than to z_b (both [D], or [P, D] giving [N, P]), 0 if
    farther, 0.5 on a tie, so an embedding blind to the difference shows no preference."""
    z = np.asarray(z, np.float64)
    a, b = z @ np.asarray(z_a, np.float64).T, z @ np.asarray(z_b, np.float64).T
    return np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))


def representation_bias(zimg, z_male, z_female) -> dict:
    """Representation bias (first-order, CLIP the Bias [3]): how often an image is closer to "Male"
    than to "Female" (ties count half). zimg [N, D] (ImageNet images), z_male [D], z_female [D].
    Returns {"male_frac": fraction preferring "Male" (Table 3 shows it in %),
             "disparity": male_frac - 0.5 (Table 11 shows it in %, e.g. 83.2 % -> 33.15),
             "prefers_male": [N] per-image preference}."""
    prefers_male = preference(zimg, z_male, z_female)
    male_frac = float(np.mean(prefers_male))
    return {"male_frac": male_frac, "disparity": male_frac - 0.5, "prefers_male": prefers_male}


def association_preferences(zimg, z_first, z_second, pairs=OCCUPATION_PAIRS) -> np.ndarray:
    """[N, P] preference (preference()) of each image for each pair's first occupation over its second."""
    z_first, z_second = np.asarray(z_first, np.float64), np.asarray(z_second, np.float64)
    if z_first.shape != z_second.shape or z_first.shape[0] != len(pairs):
        raise ValueError(f"z_first {z_first.shape} and z_second {z_second.shape} need one row per pair ({len(pairs)})")
    return preference(zimg, z_first, z_second)


def association_bias(zimg, is_female, z_first, z_second, pairs=OCCUPATION_PAIRS) -> dict[str, dict[str, float]]:
    """Association bias (second-order, gender × occupation, CLIP the Bias [3]) on FairFace images.
    zimg [N, D], is_female [N] bool (perceived gender of each image), z_first / z_second [P, D]: text
    embeddings of each pair's first and second occupation, in the order of `pairs` (default the paper's
    five). Returns {first occupation: {"female": p, "male": p}}: the fraction of female / male images
    for which the model prefers the first occupation over the second (ties half; Figures 3 and 7)."""
    zimg, is_female = np.asarray(zimg, np.float64), np.asarray(is_female, bool)
    if is_female.shape != (zimg.shape[0],) or is_female.all() or not is_female.any():
        raise ValueError(
            f"is_female {is_female.shape} must mark each of {zimg.shape[0]} images, with both genders present"
        )
    prefers_first = association_preferences(zimg, z_first, z_second, pairs)  # [N, P]
    return {
        first: {"female": float(prefers_first[is_female, p].mean()), "male": float(prefers_first[~is_female, p].mean())}
        for p, (first, _) in enumerate(pairs)
    }
