"""The paper's evaluation protocols (PAPER.md §3) as pure functions of embeddings and labels.

Embeddings are L2-normalised rows: images `zimg` [N, D], texts `ztxt` [M, D], classes `zcls` [C, D].
Scores are fractions in [0, 1]; `groups.error_pct` turns them into the error % the paper reports.
Everything is numpy (float64) so a metric is exact and identical on every machine; jax arrays are
accepted anywhere an array is.
"""
from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence

import numpy as np

# big_vision's few-shot defaults: a constant bias feature large enough to be almost unregularised,
# and one fixed ridge strength (big_vision selects among a grid on held-out data; the paper does not
# say, PAPER.md §3, so one value keeps the probe a pure function).
BIAS_FEATURE = 100.0
DEFAULT_L2 = 2.0**10
STD_EPS = 1e-5

# CLIP the Bias [3]: each pair is (stereotypically female-associated, counterpart), labelled by its first.
OCCUPATION_PAIRS = (
    ("librarian", "scientist"),
    ("nurse", "doctor"),
    ("housekeeper", "homeowner"),
    ("receptionist", "executive"),
    ("secretary", "manager"),
)

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


def zero_shot_accuracy(zimg, zcls, labels) -> tuple[float, np.ndarray]:
    """Zero-shot classification. zimg [N, D], zcls [C, D], labels [N] ints in [0, C).
    Returns (accuracy, predictions [N]); a prediction is the class of highest cosine similarity."""
    zimg, zcls, labels = np.asarray(zimg, np.float64), np.asarray(zcls, np.float64), np.asarray(labels)
    if labels.shape != (zimg.shape[0],):
        raise ValueError(f"labels shape {labels.shape} does not match {zimg.shape[0]} images")
    predictions = np.argmax(zimg @ zcls.T, axis=1)
    return float(np.mean(predictions == labels)), predictions


def retrieval_recall(zimg, ztxt, text_to_image, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Zero-shot retrieval Recall@k. zimg [N, D], ztxt [M, D], text_to_image [M]: the image each caption
    describes (every image needs at least one). Image->text is a hit when ANY of the image's captions is
    among its top k texts; text->image when the caption's image is among its top k images.
    Ties count in the query's favour (rank = number of strictly better candidates).
    Returns {"i2t@k": ..., "t2i@k": ...} for each k."""
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
    best_own = np.where(own, sim, -np.inf).max(axis=1)  # [N]
    i2t_rank = np.sum(sim > best_own[:, None], axis=1)  # [N]
    t2i_rank = np.sum(sim > sim[text_to_image, np.arange(len(text_to_image))][None, :], axis=0)  # [M]
    out = {}
    for k in ks:
        out[f"i2t@{k}"] = float(np.mean(i2t_rank < k))
        out[f"t2i@{k}"] = float(np.mean(t2i_rank < k))
    return out


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


def linear_probe_accuracy(
    train_x,
    train_y,
    test_x,
    test_y,
    num_classes: int,
    l2: float = DEFAULT_L2,
    shots: int = 10,
    seeds: Sequence[int] = (0, 1, 2),
) -> tuple[float, list[float]]:
    """Few-shot linear probe as big_vision's closed-form least squares on frozen embeddings.

    train_x [N, D], train_y [N] ints in [0, num_classes); test_x [T, D], test_y [T]. For each seed,
    `shots` examples per class are drawn from the training set; features are standardised with that
    draw's mean and std, a constant bias feature is appended, and a ridge regression (strength `l2`)
    onto ±1 one-vs-rest targets is solved in closed form. Returns (mean accuracy, per-seed accuracies).
    """
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if train_y.shape != (train_x.shape[0],) or test_y.shape != (test_x.shape[0],):
        raise ValueError(f"labels {train_y.shape}/{test_y.shape} do not match features {train_x.shape}/{test_x.shape}")
    per_seed = []
    for seed in seeds:
        idx = _draw_shots(train_y, num_classes, shots, seed)
        predictions = _ridge_predict(train_x[idx], train_y[idx], test_x, num_classes, l2)
        per_seed.append(float(np.mean(predictions == test_y)))
    return float(np.mean(per_seed)), per_seed


def geolocalization_accuracy(
    train_x, train_country, test_x, test_country, country_to_region=None, **probe_kwargs
) -> tuple[float, list[float]]:
    """Few-shot geolocalisation (PAPER.md §3): the linear probe predicting an image's country of origin
    (Dollar Street, GeoDE-country), or its region when `country_to_region` [num_countries] (region id of
    each country id) is given (GeoDE-region; then the shots are drawn per region).
    train_x [N, D], train_country [N], test_x [T, D], test_country [T] country ids.
    `probe_kwargs` go to `linear_probe_accuracy` (l2, shots, seeds)."""
    train_y, test_y = np.asarray(train_country), np.asarray(test_country)
    if country_to_region is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    else:
        country_to_region = np.asarray(country_to_region)
        train_y, test_y = country_to_region[train_y], country_to_region[test_y]
        num_classes = int(country_to_region.max()) + 1
    return linear_probe_accuracy(train_x, train_y, test_x, test_y, num_classes, **probe_kwargs)


def performance_disparity(correct, groups) -> tuple[float, dict]:
    """Maximum accuracy gap across subgroups (Dollar Street income groups, GeoDE regions).
    correct [N] bool (was image n classified right), groups [N] any hashable group labels.
    Returns (max minus min of the per-group accuracies, {group: accuracy})."""
    correct, groups = np.asarray(correct, bool), np.asarray(groups)
    if correct.shape != groups.shape or correct.ndim != 1:
        raise ValueError(f"correct {correct.shape} and groups {groups.shape} must be equal-length vectors")
    per_group = {getattr(g, "item", lambda: g)(): float(correct[groups == g].mean()) for g in np.unique(groups)}
    return max(per_group.values()) - min(per_group.values()), per_group


def representation_bias(zimg, z_male, z_female) -> dict[str, float]:
    """Representation bias (first-order, CLIP the Bias [3]): how often an image is closer to "Male"
    than to "Female". zimg [N, D] (ImageNet images), z_male [D], z_female [D] text embeddings.
    Returns {"male_frac": fraction preferring "Male" (Table 3 shows it in %),
             "disparity": male_frac - 0.5 (Table 11 shows it in %, e.g. 83.2 % -> 33.15)}."""
    zimg = np.asarray(zimg, np.float64)
    prefers_male = zimg @ np.asarray(z_male, np.float64) > zimg @ np.asarray(z_female, np.float64)
    male_frac = float(np.mean(prefers_male))
    return {"male_frac": male_frac, "disparity": male_frac - 0.5}


def association_bias(zimg, is_female, z_first, z_second, pairs=OCCUPATION_PAIRS) -> dict[str, dict[str, float]]:
    """Association bias (second-order, gender × occupation, CLIP the Bias [3]) on FairFace images.
    zimg [N, D], is_female [N] bool (perceived gender of each image), z_first / z_second [P, D]: text
    embeddings of each pair's first and second occupation, in the order of `pairs` (default the paper's
    five). Returns {first occupation: {"female": p, "male": p}}: the fraction of female / male images
    for which the model prefers the first occupation over the second (Figures 3 and 7)."""
    zimg, is_female = np.asarray(zimg, np.float64), np.asarray(is_female, bool)
    z_first, z_second = np.asarray(z_first, np.float64), np.asarray(z_second, np.float64)
    if z_first.shape != z_second.shape or z_first.shape[0] != len(pairs):
        raise ValueError(f"z_first {z_first.shape} and z_second {z_second.shape} need one row per pair ({len(pairs)})")
    if is_female.shape != (zimg.shape[0],) or is_female.all() or not is_female.any():
        raise ValueError(
            f"is_female {is_female.shape} must mark each of {zimg.shape[0]} images, with both genders present"
        )
    prefers_first = zimg @ z_first.T > zimg @ z_second.T  # [N, P]
    return {
        first: {"female": float(prefers_first[is_female, p].mean()), "male": float(prefers_first[~is_female, p].mean())}
        for p, (first, _) in enumerate(pairs)
    }
