"""Deterministic synthetic city: a warped, jittered street grid with arterials, parks and one-ways."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .data import RawNetwork
from .geo import Projection
from .text import deletions, normalize
from .wordlists import FIRST, POIS, SECOND, TYPES_BY_CLASS

CENTER_LAT, CENTER_LON = 60.17, 24.94
SPEED_BY_CLASS = (25.0, 50.0, 90.0)
CHUNK_BY_CLASS = ((8, 30), (45, 110), (10_000, 10_001))
SPACING_BY_CLASS = ((15.0, 24.0), (24.0, 36.0), (110.0, 140.0))
DROP_LOCAL = 0.08
ONEWAY_LOCAL = 0.1


@dataclass(frozen=True, slots=True)
class GridSpec:
    """Size of a generated city: `lines` grid lines per axis, `spacing_m` apart."""

    name: str
    lines: int
    spacing_m: float = 55.0


SPECS: dict[str, GridSpec] = {
    "small": GridSpec("Smallville", 72),
    "full": GridSpec("Greater Acme", 336),
}


def line_class(index: int) -> int:
    """0 local (25 km/h), 1 arterial (50 km/h), 2 highway (90 km/h)."""
    if index % 48 == 24:
        return 2
    return 1 if index % 12 == 6 else 0


def generate(spec: GridSpec, seed: int, progress: Callable[[str], None] | None = None) -> RawNetwork:
    """Build the raw network of a synthetic city; same spec and seed give identical arrays."""
    rng = np.random.Generator(np.random.PCG64(seed))
    say = progress or (lambda _msg: None)
    n, spacing = spec.lines, spec.spacing_m
    x, y = _node_xy(rng, n, spacing)
    say(f"generator: {n * n} grid nodes")
    half = (n - 1) / 2 * spacing
    parks = _parks(rng, n, half)
    seg_u, seg_v, seg_street, classes = _segments(rng, n)
    keep = _keep_mask(rng, x, y, seg_u, seg_v, classes[seg_street], parks)
    seg_u, seg_v, seg_street = seg_u[keep], seg_v[keep], seg_street[keep]
    n_streets = len(classes)
    oneway_street = (classes == 0) & (rng.random(n_streets) < ONEWAY_LOCAL)
    flip = oneway_street & (rng.random(n_streets) < 0.5)
    flip_seg = flip[seg_street]
    seg_u, seg_v = np.where(flip_seg, seg_v, seg_u), np.where(flip_seg, seg_u, seg_v)
    along = np.arange(len(seg_u))
    order = np.lexsort((np.where(flip_seg, -along, along), seg_street))  # flipped streets run backwards
    seg_u, seg_v, seg_street = seg_u[order], seg_v[order], seg_street[order]
    say(f"generator: {n_streets} streets, {len(seg_u)} segments")
    proj = Projection(CENTER_LAT, CENTER_LON)
    lat, lon = proj.to_latlon(x, y)
    mids = (x[seg_u] + x[seg_v]) / 2, (y[seg_u] + y[seg_v]) / 2
    return RawNetwork(
        name=spec.name,
        lat0=CENTER_LAT,
        lon0=CENTER_LON,
        node_lat=np.round(lat, 7),
        node_lon=np.round(lon, 7),
        seg_u=seg_u,
        seg_v=seg_v,
        seg_oneway=oneway_street[seg_street],
        seg_street=seg_street,
        street_name=street_names(rng, classes),
        street_speed=np.array(SPEED_BY_CLASS)[classes],
        street_congestion=_congestion(rng, classes, seg_street, mids),
        street_spacing=_spacing(rng, classes),
        pois=[(name, kind, *_unproject(proj, fx * half, fy * half)) for name, kind, fx, fy in POIS],
    )


def _unproject(proj: Projection, x: float, y: float) -> tuple[float, float]:
    lat, lon = proj.to_latlon(x, y)
    return float(lat), float(lon)


def _node_xy(
    rng: np.random.Generator, n: int, spacing: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Grid coordinates (node id = row * n + col), gently warped and jittered."""
    iy, ix = np.divmod(np.arange(n * n, dtype=np.int64), n)
    x = (ix - (n - 1) / 2) * spacing
    y = (iy - (n - 1) / 2) * spacing
    phase = rng.uniform(0, 2 * np.pi, size=2)
    wx = x + 0.3 * spacing * np.sin(y / 900.0 + phase[0])
    wy = y + 0.3 * spacing * np.sin(x / 1100.0 + phase[1])
    jitter = rng.uniform(-0.15 * spacing, 0.15 * spacing, size=(2, n * n))
    return wx + jitter[0], wy + jitter[1]


def _parks(rng: np.random.Generator, n: int, half: float) -> NDArray[np.float64]:
    """(cx, cy, r) rows of circular parks where local streets are removed."""
    count = max(1, round(n * n / 5000))
    centres = rng.uniform(-0.85 * half, 0.85 * half, size=(count, 2))
    radii = rng.uniform(0.02 * half, 0.07 * half, size=(count, 1))
    return np.hstack([centres, radii])


def _segments(
    rng: np.random.Generator, n: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """All grid segments, each line cut into streets of class-dependent length."""
    us: list[NDArray[np.int64]] = []
    vs: list[NDArray[np.int64]] = []
    streets: list[NDArray[np.int64]] = []
    classes: list[int] = []
    step_along = (1, n)  # horizontal lines advance by 1, vertical by n
    for orientation in (0, 1):
        for line in range(n):
            cls = line_class(line)
            start = line * n if orientation == 0 else line
            u = start + np.arange(n - 1) * step_along[orientation]
            lo, hi = CHUNK_BY_CLASS[cls]
            cuts = np.cumsum(rng.integers(lo, hi, size=n))
            chunk = np.searchsorted(cuts, np.arange(n - 1), side="right")
            _, chunk = np.unique(chunk, return_inverse=True)
            us.append(u)
            vs.append(u + step_along[orientation])
            streets.append(len(classes) + chunk)
            classes.extend([cls] * int(chunk.max() + 1))
    return (
        np.concatenate(us),
        np.concatenate(vs),
        np.concatenate(streets),
        np.array(classes, dtype=np.int64),
    )


def _keep_mask(
    rng: np.random.Generator,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    seg_u: NDArray[np.int64],
    seg_v: NDArray[np.int64],
    seg_class: NDArray[np.int64],
    parks: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Drop random local segments and local segments inside parks."""
    local: NDArray[np.bool_] = seg_class == 0  # ndarray.__eq__ is typed as returning Any
    keep = ~(local & (rng.random(len(seg_u)) < DROP_LOCAL))
    mx, my = (x[seg_u] + x[seg_v]) / 2, (y[seg_u] + y[seg_v]) / 2
    for cx, cy, r in parks:
        keep &= ~(local & ((mx - cx) ** 2 + (my - cy) ** 2 < r * r))
    return keep


def _congestion(
    rng: np.random.Generator,
    classes: NDArray[np.int64],
    seg_street: NDArray[np.int64],
    mids: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """Per-street factor in (0, 1]: busier near the centre, randomised per street."""
    count = np.maximum(np.bincount(seg_street, minlength=len(classes)), 1)
    sx = np.bincount(seg_street, weights=mids[0], minlength=len(classes)) / count
    sy = np.bincount(seg_street, weights=mids[1], minlength=len(classes)) / count
    central = np.exp(-(sx**2 + sy**2) / (2 * 5000.0**2))
    factor = (1.0 - 0.35 * central) * rng.uniform(0.8, 1.0, size=len(classes))
    # A separate step: nested in np.round, mypy infers clip's dtype from round's first overload (float16).
    clipped = np.clip(factor, 0.4, 1.0)
    return np.round(clipped, 4)


def _spacing(rng: np.random.Generator, classes: NDArray[np.int64]) -> NDArray[np.float64]:
    """Metres between consecutive house numbers on one side of each street."""
    lo = np.array([s[0] for s in SPACING_BY_CLASS])[classes]
    hi = np.array([s[1] for s in SPACING_BY_CLASS])[classes]
    return np.round(rng.uniform(lo, hi), 2)


def street_names(rng: np.random.Generator, classes: NDArray[np.int64]) -> list[str]:
    """Unique names; no two names (nor a POI name) are within one edit of each other."""
    bases = [a + b for a in FIRST for b in ("", *SECOND)]
    order = rng.permutation(len(bases))
    taken: set[str] = set()
    for poi in POIS:
        key = normalize(poi[0])
        taken.update([key, *deletions(key)])
    names: list[str] = []
    pos = 0
    for cls in classes:
        types = TYPES_BY_CLASS[int(cls)]
        while True:
            base = bases[order[pos % len(bases)]]
            name = f"{base} {types[int(rng.integers(len(types)))]}"
            pos += 1
            key = normalize(name)
            variants = {key, *deletions(key)}
            if not variants & taken:
                taken.update(variants)
                names.append(name)
                break
    return names
