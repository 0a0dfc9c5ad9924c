"""Procedural images: what each example looks like, in NumPy on the CPU and in JAX on an accelerator.

One implementation serves both: `render(world, gt, hi, lo, px, xp)` takes the array namespace. The
picture encodes the example's ground truth under nuisance:
- concept: a shape (one of 8), two colours and a stripe texture; a landmark is a building of the
  tower family with its own geometry (width, one to three tiers, a flat roof, spire or dome, an
  arch or not), so that each landmark is told apart by what it looks like, not by where it stands
  (before, all landmarks shared one tower and GLDv2-like zero-shot reduced to reading the country's
  background tint);
- regional variant: concepts whose look is regional (GeoDE / Dollar Street objects) turn their
  texture and shift their second colour by region, so a stove looks different by region;
- country and income: background grey tinted by region and, faintly, by country (what geolocalisation
  can find), darker and more cluttered in poorer homes (unless world.income_appearance is off);
- person: a small figure whose body outline shows perceived gender and whose colour shows occupation;
- nuisance: position, scale, rotation of the object, direction of the background gradient.
Output: float32 [N, px, px, 3] in [0, 1]. `render_jax` is the jit-compiled JAX version.
`object_mask` gives the object's coverage in each image, from the same code that draws it.
"""
from __future__ import annotations

import numpy as np

from vlscale.world.hashing import hash32, id_words, uniform
from vlscale.world.truth import ground_truth

N_SHAPES = 8  # circle, box, diamond, ring, cross, triangle, star, ellipse; 8 = landmark tower family
TOWER_TOPS = ("flat", "spire", "dome")
MAX_TIERS = 3
_S_NUISANCE = 200  # hash streams 200.. for nuisance


def _hue_rgb(hue, sat, val):
    """Colour of hue in [0,1) (cosine palette), saturation and value; broadcasts over arrays."""
    phase = np.asarray([0.0, 1.0 / 3.0, 2.0 / 3.0])
    rgb = 0.5 + 0.5 * np.cos(2 * np.pi * (hue[..., None] - phase))
    return (val[..., None] * (1 - sat[..., None] + sat[..., None] * rgb)).astype(np.float32)


BACKGROUND_GREY = 0.75  # the untinted part of a background


def visual_tables(seed: int, n_concepts: int, landmark_start: int, country_region: np.ndarray,
                  region_tint: float, country_tint: float) -> dict:
    """The look of every concept and country, drawn once per world: arrays for render().

    A country's background colour is grey tinted by its region's colour (weight `region_tint`) and by
    a colour of its own (`country_tint`): small tints make where a picture was taken a subtle cue, as
    on the web, rather than a shortcut that a contrastive model learns before what is in the picture.
    Landmarks (concepts from `landmark_start`) are towers whose geometry is drawn per concept from
    a stream of its own, so adding it left every other table as it was."""
    rng = np.random.default_rng([seed, 3])
    n_countries = len(country_region)
    K = n_concepts
    shape = rng.integers(0, N_SHAPES, K).astype(np.int32)
    shape[landmark_start:] = N_SHAPES
    hue_a, hue_b = rng.random(K), rng.random(K)
    tables = dict(
        vis_shape=shape,
        vis_color_a=_hue_rgb(hue_a, rng.uniform(0.6, 1.0, K), rng.uniform(0.7, 1.0, K)),
        vis_color_b=_hue_rgb(hue_b, rng.uniform(0.5, 1.0, K), rng.uniform(0.3, 0.8, K)),
        vis_freq=rng.uniform(1.0, 6.0, K).astype(np.float32),
        vis_tex_angle=rng.uniform(0, np.pi, K).astype(np.float32),
        vis_width=rng.uniform(0.3, 0.8, K).astype(np.float32),  # tower half-width (landmarks)
        vis_region_angle=(np.arange(6) * np.pi / 6).astype(np.float32),
        vis_region_color=_hue_rgb(np.arange(6) / 6.0, np.full(6, 0.8), np.full(6, 0.9)),
        vis_occupation_color=_hue_rgb(np.arange(10) / 10.0, np.full(10, 1.0), np.full(10, 0.9)),
    )
    own = _hue_rgb(rng.random(n_countries), rng.uniform(0.2, 0.6, n_countries), np.ones(n_countries))
    tower = np.random.default_rng([seed, 4])
    tables.update(vis_tiers=tower.integers(1, MAX_TIERS + 1, K).astype(np.int32),
                  vis_top=tower.integers(0, len(TOWER_TOPS), K).astype(np.int32),
                  vis_spire=tower.uniform(0.3, 0.8, K).astype(np.float32),  # spire height
                  vis_arch=tower.random(K) < 0.5)
    tables["vis_country_bg"] = ((1 - region_tint - country_tint) * BACKGROUND_GREY
                                + region_tint * tables["vis_region_color"][country_region]
                                + country_tint * own).astype(np.float32)
    return tables


def _sdf(xp, shape, x, y):
    """Signed distance (negative inside) of the unit shape `shape` ([N,1,1] int) at local (x, y)."""
    ax, ay = xp.abs(x), xp.abs(y)
    r = xp.sqrt(x * x + y * y)
    theta = xp.arctan2(y, x)
    d = [
        r - 0.9,
        xp.maximum(ax, ay) - 0.75,
        ax + ay - 1.0,
        xp.abs(r - 0.7) - 0.22,
        xp.minimum(xp.maximum(ax - 0.28, ay - 0.9), xp.maximum(ax - 0.9, ay - 0.28)),
        xp.maximum(-y - 0.55, ax * 0.866 + y * 0.5 - 0.5),
        r - (0.6 + 0.3 * xp.cos(5 * theta)),
        xp.sqrt(x * x + (y / 0.5) ** 2) * 0.5 - 0.45,
    ]
    out = d[0]
    for k in range(1, N_SHAPES):
        out = xp.where(shape == k, d[k], out)
    return out


_GROUND, _ROOF = 0.8, -0.2  # a tower's body stands between these heights (y grows downward)


def _tower(xp, width, tiers, top, spire, arch, x, y):
    """Signed distance of a tower of the landmark family; every parameter is [N,1,1].

    width: half-width of the bottom tier; tiers: 1..MAX_TIERS stacked blocks, each narrower than the
    one below; top: index into TOWER_TOPS; spire: height of the spire above the roof; arch: a
    doorway cut into the bottom tier."""
    f32 = xp.float32
    height = f32(_GROUND - _ROOF) / tiers.astype(f32)
    body = None
    for k in range(MAX_TIERS):
        half_width = width * f32(1.0 - 0.22 * k)
        centre = f32(_GROUND) - (f32(k) + f32(0.5)) * height
        block = xp.maximum(xp.abs(x) - half_width, xp.abs(y - centre) - f32(0.5) * height)
        body = block if k == 0 else xp.where(tiers > k, xp.minimum(body, block), body)
    roof_width = width * (f32(1.22) - f32(0.22) * tiers.astype(f32))  # the top tier's half-width
    # a spire tapers from 0.4 of the roof's width to a point `spire` above the roof
    rise = xp.clip((f32(_ROOF) - y) / spire, 0.0, 1.0)
    needle = xp.maximum(xp.abs(x) - f32(0.4) * roof_width * (f32(1) - rise),
                        xp.abs(y - (f32(_ROOF) - f32(0.5) * spire)) - f32(0.5) * spire)
    dome = xp.sqrt(x * x + (y - f32(_ROOF)) ** 2) - f32(0.9) * roof_width
    d = xp.where(top == TOWER_TOPS.index("spire"), xp.minimum(body, needle),
                 xp.where(top == TOWER_TOPS.index("dome"), xp.minimum(body, dome), body))
    door = xp.minimum(xp.maximum(xp.abs(x) - f32(0.45) * width, xp.abs(y - f32(_GROUND - 0.15)) - f32(0.15)),
                      xp.sqrt(x * x + (y - f32(_GROUND - 0.3)) ** 2) - f32(0.45) * width)
    return xp.where(arch, xp.maximum(d, -door), d)


def _cover(xp, d, px_per_unit):
    """Anti-aliased coverage of a distance field: 1 inside, 0 outside, a one-pixel ramp between."""
    return xp.clip(0.5 - d * px_per_unit, 0.0, 1.0)


def _col(xp, a):
    """[N] -> [N, 1, 1], to broadcast against the pixel grid."""
    return xp.reshape(a, (-1, 1, 1))


def _nuisance(world, hi, lo, xp):
    """Eight uniform [N] nuisance draws per example, from its id words."""
    return [uniform(xp, hash32(xp, world.seed, _S_NUISANCE + k, hi, lo)) for k in range(8)]


def _grid(xp, px):
    """Pixel-centre coordinates in [-1, 1]: gx [1, 1, px] (columns), gy [1, px, 1] (rows, downward)."""
    f32 = xp.float32
    grid = (xp.arange(px, dtype=f32) + f32(0.5)) * f32(2.0 / px) - f32(1.0)
    return grid[None, None, :], grid[None, :, None]


def _object(t, concept, u, gx, gy, px, xp):
    """Where the object is: its local coordinates x, y [N, px, px] (placed at the nuisance position,
    scale and rotation) and its anti-aliased coverage [N, px, px]."""
    f32 = xp.float32
    cx, cy = _col(xp, u[0] * f32(0.8) - f32(0.4)), _col(xp, u[1] * f32(0.8) - f32(0.4))
    scale = _col(xp, u[2] * f32(0.3) + f32(0.35))
    angle = _col(xp, u[3] * f32(2 * np.pi))
    ca, sa = xp.cos(angle), xp.sin(angle)
    x = ((gx - cx) * ca + (gy - cy) * sa) / scale
    y = (-(gx - cx) * sa + (gy - cy) * ca) / scale
    shape = _col(xp, t["vis_shape"][concept])
    tower = _tower(xp, *(_col(xp, t[k][concept]) for k in ("vis_width", "vis_tiers", "vis_top", "vis_spire",
                                                            "vis_arch")), x, y)
    d = xp.where(shape == N_SHAPES, tower, _sdf(xp, shape, x, y))
    return x, y, _cover(xp, d, scale * f32(px / 2))


def object_mask(world, gt: dict, hi, lo, px: int, xp=np):
    """Coverage of each image's object (1 inside, 0 outside, anti-aliased edge), before the person is
    drawn over it: float32 [N, px, px], the same geometry render() paints the object with."""
    t = world.device_tables(xp)
    hi = xp.asarray(hi, dtype=xp.uint32).reshape(-1)
    lo = xp.asarray(lo, dtype=xp.uint32).reshape(-1)
    gx, gy = _grid(xp, px)
    _, _, mask = _object(t, xp.reshape(gt["concept"], (-1,)), _nuisance(world, hi, lo, xp), gx, gy, px, xp)
    return mask.astype(xp.float32)


def render(world, gt: dict, hi, lo, px: int, xp=np):
    """Images of the examples with ground truth `gt` and id words (hi, lo): float32 [N, px, px, 3]."""
    t = world.device_tables(xp)
    f32 = xp.float32
    hi = xp.asarray(hi, dtype=xp.uint32).reshape(-1)
    lo = xp.asarray(lo, dtype=xp.uint32).reshape(-1)
    u = _nuisance(world, hi, lo, xp)

    def col(a):
        return _col(xp, a)

    concept = xp.reshape(gt["concept"], (-1,))
    region = xp.maximum(xp.reshape(gt["variant"], (-1,)), 0)
    varies = xp.reshape(gt["variant"], (-1,)) >= 0
    gx, gy = _grid(xp, px)

    # the object: nuisance position, scale and rotation
    x, y, coverage = _object(t, concept, u, gx, gy, px, xp)
    mask = coverage[..., None]
    tex_angle = t["vis_tex_angle"][concept] + xp.where(varies, t["vis_region_angle"][region], f32(0))
    stripes = f32(0.5) + f32(0.5) * xp.cos(col(t["vis_freq"][concept]) * f32(np.pi)
                                           * (x * col(xp.cos(tex_angle)) + y * col(xp.sin(tex_angle))))
    color_b = xp.where(varies[:, None], f32(0.5) * t["vis_color_b"][concept] + f32(0.5) * t["vis_region_color"][region],
                       t["vis_color_b"][concept])
    obj = (stripes[..., None] * t["vis_color_a"][concept][:, None, None, :]
           + (1 - stripes[..., None]) * color_b[:, None, None, :])

    # the background: country colour, brightness and clutter by income, nuisance gradient
    income = xp.reshape(gt["income"], (-1,)).astype(f32)
    if not world.params.income_appearance:  # every home looks alike: the middle of the four groups' looks
        income = xp.full_like(income, f32(1.5))
    bg = t["vis_country_bg"][xp.reshape(gt["country"], (-1,))] * (f32(0.45) + f32(0.15) * income)[:, None]
    grad_angle = u[4] * f32(2 * np.pi)
    ramp = f32(0.75) + f32(0.25) * (gx * col(xp.cos(grad_angle)) + gy * col(xp.sin(grad_angle)))
    clutter = col((f32(3) - income) * f32(0.05)) * xp.sin(f32(9) * gx + col(u[5] * f32(20)) * gy + col(u[6] * f32(6)))
    background = bg[:, None, None, :] * (ramp + clutter)[..., None]
    img = mask * obj + (1 - mask) * background

    # the person: a figure beside the object; dress outline for female, box for male; occupation colour
    has_person = col(xp.reshape(gt["has_person"], (-1,)))
    px0 = col(xp.where(u[0] < 0.5, f32(0.6), f32(-0.6)))
    py0 = col(u[7] * f32(0.6) - f32(0.3))
    size = f32(world.params.person_scale)  # the figure in units of its default size
    hx, hy = (gx - px0) / size, (gy - py0) / size
    head = xp.sqrt(hx * hx + (hy + f32(0.16)) ** 2) - f32(0.08)
    box = xp.maximum(xp.abs(hx) - f32(0.07), xp.abs(hy - f32(0.04)) - f32(0.12))
    dress = xp.maximum(xp.abs(hx) - (f32(0.03) + f32(0.5) * (hy + f32(0.08))), xp.abs(hy - f32(0.04)) - f32(0.12))
    female = col(xp.reshape(gt["gender"], (-1,))) == 0
    body = xp.where(female, dress, box)
    occupation = xp.maximum(xp.reshape(gt["occupation"], (-1,)), 0)
    person = xp.where(has_person, _cover(xp, xp.minimum(head, body), size * f32(px / 2)), f32(0))[..., None]
    body_color = t["vis_occupation_color"][occupation][:, None, None, :]
    img = person * body_color + (1 - person) * img
    return xp.clip(img, 0.0, 1.0).astype(f32)


def render_ids(world, ids, px: int):
    """NumPy images of int64 global ids: float32 [N, px, px, 3] in [0, 1]."""
    hi, lo = id_words(np.asarray(ids).reshape(-1))
    return render(world, ground_truth(world, hi, lo, np), hi, lo, px, np)


def render_jax(world, px: int):
    """A jit-compiled function (hi, lo) -> images on the default JAX device, same as render_ids."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def fn(hi, lo):
        return render(world, ground_truth(world, hi, lo, jnp), hi, lo, px, jnp)

    return fn


def to_uint8(images):
    """uint8 images from float [0, 1] images (round to nearest)."""
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


def render_padded(render, ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Images of `ids` in [-1, 1] (float32 [N, px, px, 3]) from a `render_jax` renderer, in full batches
    of `batch_size` (the last padded with its final id): one compiled shape."""
    hi, lo = id_words(ids)
    chunks = []
    for start in range(0, len(ids), batch_size):
        sel = np.minimum(np.arange(start, start + batch_size), len(ids) - 1)
        chunks.append(np.asarray(render(hi[sel], lo[sel]))[: min(batch_size, len(ids) - start)])
    return np.concatenate(chunks) * np.float32(2.0) - np.float32(1.0)
