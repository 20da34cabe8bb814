"""RawNetwork -> CityData: directed edges, largest SCC, travel times, addresses, postcodes, POIs."""

from __future__ import annotations

from typing import TypedDict

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .data import CityData, RawNetwork
from .geo import EARTH_RADIUS_M, Projection

SETBACK_M = 8.0
BOUNDS_MARGIN_M = 300.0


class _Edges(TypedDict):
    """The directed edges `_directed_edges` returns (a plain dict at runtime)."""

    src: NDArray[np.int32]
    dst: NDArray[np.int32]
    len: NDArray[np.float64]
    time: NDArray[np.float64]
    street: NDArray[np.int32]


class _Addresses(TypedDict):
    """The address rows `_place_addresses` returns (a plain dict at runtime)."""

    street: NDArray[np.int32]
    number: NDArray[np.int32]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    ptr: NDArray[np.int64]


def haversine_array(
    lat1: NDArray[np.float64], lon1: NDArray[np.float64], lat2: NDArray[np.float64], lon2: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Vectorised great-circle distance in metres."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    # numpy types ufunc results on arrays as Any / NDArray[Any]; the values here are float64.
    distance: NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return distance


def build_city_data(raw: RawNetwork) -> CityData:
    """Clean a raw network and derive everything a City needs."""
    raw = _largest_scc(raw)
    raw = _drop_empty_streets(raw)
    edges = _directed_edges(raw)
    proj = Projection(raw.lat0, raw.lon0)
    addr = _place_addresses(raw, proj)
    postcode_idx, postcodes = _postcodes(addr["lat"], addr["lon"], proj, raw.district_m)
    poi_name, poi_kind, poi_addr = _pois(raw, proj, addr["lat"], addr["lon"])
    return CityData(
        meta=np.array([raw.name]),
        origin=np.array([raw.lat0, raw.lon0]),
        bounds=_bounds(raw, proj),
        node_lat=raw.node_lat,
        node_lon=raw.node_lon,
        edge_src=edges["src"],
        edge_dst=edges["dst"],
        edge_len=edges["len"],
        edge_time=edges["time"],
        edge_street=edges["street"],
        street_name=np.array(raw.street_name, dtype=str),
        street_speed=raw.street_speed.astype(np.float64),
        street_congestion=raw.street_congestion.astype(np.float64),
        seg_u=raw.seg_u.astype(np.int32),
        seg_v=raw.seg_v.astype(np.int32),
        seg_street=raw.seg_street.astype(np.int32),
        addr_street=addr["street"],
        addr_number=addr["number"],
        addr_postcode=postcode_idx,
        addr_lat=addr["lat"],
        addr_lon=addr["lon"],
        street_addr_ptr=addr["ptr"],
        postcodes=postcodes,
        poi_name=poi_name,
        poi_kind=poi_kind,
        poi_addr=poi_addr,
    )


def _with(raw: RawNetwork, **changes: object) -> RawNetwork:
    values = {k: getattr(raw, k) for k in raw.__dataclass_fields__}
    values.update(changes)
    return RawNetwork(**values)


def _arcs(raw: RawNetwork) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Directed arcs (src, dst, segment index): u->v always, v->u unless one-way."""
    two_way = np.flatnonzero(~raw.seg_oneway)
    seg = np.concatenate([np.arange(len(raw.seg_u)), two_way])
    src = np.concatenate([raw.seg_u, raw.seg_v[two_way]])
    dst = np.concatenate([raw.seg_v, raw.seg_u[two_way]])
    return src, dst, seg


def _largest_scc(raw: RawNetwork) -> RawNetwork:
    """Keep the largest strongly connected component, renumbering nodes in original order."""
    n = len(raw.node_lat)
    src, dst, _ = _arcs(raw)
    graph = csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=True, connection="strong")
    keep = labels == np.argmax(np.bincount(labels))
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[keep] = np.arange(int(keep.sum()))
    seg_keep = keep[raw.seg_u] & keep[raw.seg_v] & (raw.seg_u != raw.seg_v)
    return _with(
        raw,
        node_lat=raw.node_lat[keep],
        node_lon=raw.node_lon[keep],
        seg_u=new_id[raw.seg_u[seg_keep]],
        seg_v=new_id[raw.seg_v[seg_keep]],
        seg_oneway=raw.seg_oneway[seg_keep],
        seg_street=raw.seg_street[seg_keep],
    )


def _drop_empty_streets(raw: RawNetwork) -> RawNetwork:
    """Remove streets left without segments; order segments by street (stable)."""
    used = np.zeros(len(raw.street_name), dtype=bool)
    used[raw.seg_street] = True
    new_id = np.cumsum(used) - 1
    order = np.argsort(new_id[raw.seg_street], kind="stable")
    kept = np.flatnonzero(used)
    return _with(
        raw,
        seg_u=raw.seg_u[order],
        seg_v=raw.seg_v[order],
        seg_oneway=raw.seg_oneway[order],
        seg_street=new_id[raw.seg_street[order]],
        street_name=[raw.street_name[i] for i in kept],
        street_speed=raw.street_speed[kept],
        street_congestion=raw.street_congestion[kept],
        street_spacing=raw.street_spacing[kept],
    )


def _directed_edges(raw: RawNetwork) -> _Edges:
    """Directed edges sorted by (src, dst) with length (m) and travel time (s)."""
    src, dst, seg = _arcs(raw)
    length = haversine_array(raw.node_lat[src], raw.node_lon[src], raw.node_lat[dst], raw.node_lon[dst])
    street = raw.seg_street[seg]
    time = length / (raw.street_speed[street] / 3.6 * raw.street_congestion[street])
    order = np.lexsort((time, dst, src))
    first = np.ones(len(order), dtype=bool)  # parallel edges: keep the fastest
    first[1:] = (src[order][1:] != src[order][:-1]) | (dst[order][1:] != dst[order][:-1])
    order = order[first]
    return {
        "src": src[order].astype(np.int32),
        "dst": dst[order].astype(np.int32),
        "len": length[order],
        "time": time[order],
        "street": street[order].astype(np.int32),
    }


def _place_addresses(raw: RawNetwork, proj: Projection) -> _Addresses:
    """House numbers along each named street: odd on the left, even on the right."""
    x, y = proj.to_xy(raw.node_lat, raw.node_lon)
    dx, dy = x[raw.seg_v] - x[raw.seg_u], y[raw.seg_v] - y[raw.seg_u]
    seg_len = np.hypot(dx, dy)
    n_streets = len(raw.street_name)
    street_len = np.bincount(raw.seg_street, weights=seg_len, minlength=n_streets)
    named = np.array([bool(s) for s in raw.street_name], dtype=bool) & (raw.street_spacing > 0)
    spacing = np.where(named, raw.street_spacing, 1.0)
    per_side = np.where(named, np.maximum(1, np.floor(street_len / spacing)), 0).astype(np.int64)
    street_of = np.repeat(np.arange(n_streets), per_side)
    k = np.arange(len(street_of)) - np.repeat(np.cumsum(per_side) - per_side, per_side)
    cum = np.cumsum(seg_len)
    street_start = np.concatenate([[0.0], np.cumsum(street_len)])[:-1]
    pos = street_start[street_of] + (k + 0.5) * street_len[street_of] / per_side[street_of]
    seg = np.minimum(np.searchsorted(cum, pos, side="right"), len(cum) - 1)
    frac = np.clip((pos - (cum[seg] - seg_len[seg])) / np.maximum(seg_len[seg], 1e-9), 0.0, 1.0)
    px, py = x[raw.seg_u[seg]] + frac * dx[seg], y[raw.seg_u[seg]] + frac * dy[seg]
    nx, ny = -dy[seg] / np.maximum(seg_len[seg], 1e-9), dx[seg] / np.maximum(seg_len[seg], 1e-9)
    ax = np.stack([px + SETBACK_M * nx, px - SETBACK_M * nx], axis=1).ravel()
    ay = np.stack([py + SETBACK_M * ny, py - SETBACK_M * ny], axis=1).ravel()
    number = np.stack([2 * k + 1, 2 * k + 2], axis=1).ravel()
    lat, lon = proj.to_latlon(ax, ay)
    ptr = np.concatenate([[0], np.cumsum(2 * per_side)])
    return {
        "street": np.repeat(street_of, 2).astype(np.int32),
        "number": number.astype(np.int32),
        "lat": np.round(lat, 7),
        "lon": np.round(lon, 7),
        "ptr": ptr.astype(np.int64),
    }


def _postcodes(
    lat: NDArray[np.float64], lon: NDArray[np.float64], proj: Projection, district_m: float
) -> tuple[NDArray[np.int16], NDArray[np.str_]]:
    """Postcode per address from a square district grid; codes like 00100, 00110..."""
    x, y = proj.to_xy(lat, lon)
    if len(x) == 0:
        return np.zeros(0, dtype=np.int16), np.array(["00100"])
    cx = np.floor((x - x.min()) / district_m).astype(np.int64)
    cy = np.floor((y - y.min()) / district_m).astype(np.int64)
    cell = cy * (int(cx.max()) + 1) + cx
    used, index = np.unique(cell, return_inverse=True)
    codes = np.array([f"{100 + 10 * i:05d}" for i in range(len(used))])
    return index.astype(np.int16), codes


def _pois(
    raw: RawNetwork, proj: Projection, lat: NDArray[np.float64], lon: NDArray[np.float64]
) -> tuple[NDArray[np.str_], NDArray[np.str_], NDArray[np.int32]]:
    """Attach each named POI to its nearest address row."""
    if not raw.pois or len(lat) == 0:
        return np.array([], dtype=str), np.array([], dtype=str), np.zeros(0, dtype=np.int32)
    tree = cKDTree(np.column_stack(proj.to_xy(lat, lon)))
    plat = np.array([p[2] for p in raw.pois])
    plon = np.array([p[3] for p in raw.pois])
    _, rows = tree.query(np.column_stack(proj.to_xy(plat, plon)))
    return (
        np.array([p[0] for p in raw.pois], dtype=str),
        np.array([p[1] for p in raw.pois], dtype=str),
        np.asarray(rows, dtype=np.int32),
    )


def _bounds(raw: RawNetwork, proj: Projection) -> NDArray[np.float64]:
    """Node bounding box grown by a margin, rounded outward to 1e-5 degrees."""
    mx, my = BOUNDS_MARGIN_M / proj.kx, BOUNDS_MARGIN_M / proj.ky
    return np.array(
        [
            np.floor((raw.node_lon.min() - mx) * 1e5) / 1e5,
            np.floor((raw.node_lat.min() - my) * 1e5) / 1e5,
            np.ceil((raw.node_lon.max() + mx) * 1e5) / 1e5,
            np.ceil((raw.node_lat.max() + my) * 1e5) / 1e5,
        ]
    )
