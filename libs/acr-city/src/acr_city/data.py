"""CityData: the immutable array bundle a City is built from (cached as one .npz file)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FORMAT_VERSION = 1


@dataclass(frozen=True)
class RawNetwork:
    """A street network before cleaning: undirected segments grouped into named streets.

    Both the synthetic generator and the OSM reader produce one; `build_city_data` turns it
    into CityData through the same code path.
    """

    name: str
    lat0: float
    lon0: float
    node_lat: NDArray[np.float64]
    node_lon: NDArray[np.float64]
    seg_u: NDArray[np.int64]
    seg_v: NDArray[np.int64]
    seg_oneway: NDArray[np.bool_]  # True: drivable u -> v only
    seg_street: NDArray[np.int64]
    street_name: list[str]  # "" = unnamed (routable, not addressable)
    street_speed: NDArray[np.float64]  # km/h
    street_congestion: NDArray[np.float64]  # 0 < factor <= 1
    street_spacing: NDArray[np.float64]  # metres between house numbers on one side, 0 = none
    pois: list[tuple[str, str, float, float]]  # (name, kind, lat, lon)
    district_m: float = 2000.0


@dataclass(frozen=True)
class CityData:
    """All arrays of a built city. Strings are numpy unicode arrays (no pickle)."""

    meta: NDArray[np.str_]  # [name]
    origin: NDArray[np.float64]  # [lat0, lon0]
    bounds: NDArray[np.float64]  # [min_lon, min_lat, max_lon, max_lat]
    node_lat: NDArray[np.float64]
    node_lon: NDArray[np.float64]
    edge_src: NDArray[np.int32]
    edge_dst: NDArray[np.int32]
    edge_len: NDArray[np.float64]  # metres
    edge_time: NDArray[np.float64]  # seconds
    edge_street: NDArray[np.int32]
    street_name: NDArray[np.str_]
    street_speed: NDArray[np.float64]
    street_congestion: NDArray[np.float64]
    seg_u: NDArray[np.int32]  # undirected segments ordered by street (for drawing)
    seg_v: NDArray[np.int32]
    seg_street: NDArray[np.int32]
    addr_street: NDArray[np.int32]  # rows sorted by (street, house number)
    addr_number: NDArray[np.int32]
    addr_postcode: NDArray[np.int16]
    addr_lat: NDArray[np.float64]
    addr_lon: NDArray[np.float64]
    street_addr_ptr: NDArray[np.int64]  # rows of street s: ptr[s]:ptr[s+1]
    postcodes: NDArray[np.str_]
    poi_name: NDArray[np.str_]
    poi_kind: NDArray[np.str_]
    poi_addr: NDArray[np.int32]

    @property
    def name(self) -> str:
        """City name."""
        return str(self.meta[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Field name -> array, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def digest(self) -> str:
        """SHA-256 over every array's dtype, shape and bytes (machine independent)."""
        h = hashlib.sha256()
        for key, arr in self.arrays().items():
            a = np.ascontiguousarray(arr)
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
            h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def save(self, path: Path) -> None:
        """Write an uncompressed .npz (fast to load) atomically: a temporary file of this process's own,
        flushed to disk, then renamed over `path`, so concurrent writers and readers never collide."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                # allow_pickle=True is numpy's default, spelled out so that mypy does not match the unpacked
                # dict against that bool parameter (nothing is pickled: every array is numeric or unicode).
                np.savez(fh, allow_pickle=True, **self.arrays())
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def is_complete(cls, path: Path) -> bool:
        """True when `path` is an archive holding every array (reads its directory, not the arrays)."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {f.name for f in fields(cls)} <= set(npz.files)
        except (OSError, ValueError, zipfile.BadZipFile):
            return False

    @classmethod
    def load(cls, path: Path) -> CityData:
        """Read a file written by `save`."""
        with np.load(path, allow_pickle=False) as npz:
            return cls(**{f.name: npz[f.name] for f in fields(cls)})
