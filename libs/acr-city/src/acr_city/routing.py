"""Routing on CSR arrays with scipy's C Dijkstra (no networkx).

Edge weights pack travel time and length into one exact float64 integer:
``ceil(ms) * 2**21 + ceil(decimetres)``, so one search yields both the fastest time and the
length of that same path (ties broken by shorter length). Rounding up keeps every reported
time/length >= the true value of the path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from .data import CityData
from .geo import Projection

LEN_BITS = 2**21  # decimetres: paths up to ~209 km
GROWTH = 1.6
ASSUMED_SPEED_MS = 9.0  # first guess of the door-to-door speed for the bidirectional radius
LONG_ROUTE_FRACTION = 0.4  # of the network diagonal: beyond it one full forward search is cheaper
MAX_RADIUS = 1e6 * 1000.0 * LEN_BITS  # beyond ~11 days of driving: search everything


def encode(time_s: NDArray[np.float64], length_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Pack seconds and metres into one float64 weight (exact integers < 2**53)."""
    ms = np.maximum(1.0, np.ceil(time_s * 1000.0))
    return ms * LEN_BITS + np.ceil(length_m * 10.0)


def decode(weight: NDArray[np.float64] | float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unpack (seconds, metres) from summed weights."""
    w = np.asarray(weight, dtype=np.float64)
    ms = np.floor(w / LEN_BITS)
    return ms / 1000.0, (w - ms * LEN_BITS) / 10.0


def encode_seconds(seconds: float) -> float:
    """Weight bound that admits every path of at most `seconds`."""
    # numpy types np.floor(<float>) as Any; the value is an np.float64, a float subclass.
    bound: float = (np.floor(seconds * 1000.0) + 1.0) * LEN_BITS - 1.0
    return bound


@dataclass(frozen=True, slots=True)
class Meeting:
    """Result of a bidirectional search: packed cost and the meeting node."""

    weight: float
    node: int


class Router:
    """Directed road graph with packed weights and a node KD-tree for snapping."""

    def __init__(self, data: CityData, proj: Projection) -> None:
        """Build forward/reverse CSR matrices and the node KD-tree."""
        n = len(data.node_lat)
        self.n = n
        self.proj = proj
        weight = encode(data.edge_time, data.edge_len)
        self.forward = csr_matrix((weight, (data.edge_src, data.edge_dst)), shape=(n, n))
        self.backward = self.forward.T.tocsr()
        self.max_edge_w = float(weight.max())
        x, y = proj.to_xy(data.node_lat, data.node_lon)
        self.tree = cKDTree(np.column_stack([x, y]))
        self.long_route_m = LONG_ROUTE_FRACTION * float(np.hypot(np.ptp(x), np.ptp(y)))

    def snap(self, lat: float, lon: float) -> tuple[int, float]:
        """Nearest node and its straight-line distance in metres."""
        dist, node = self.tree.query(self.proj.point_xy(lat, lon))
        return int(node), float(dist)

    def snap_many(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Vectorised `snap`."""
        x, y = self.proj.to_xy(lat, lon)
        dist, nodes = self.tree.query(np.column_stack([x, y]))
        return np.asarray(nodes, dtype=np.int64), np.asarray(dist, dtype=np.float64)

    def meet(
        self, source: int, target: int, straight_m: float
    ) -> tuple[Meeting, NDArray[np.int32] | None, NDArray[np.int32] | None]:
        """Bidirectional search with a growing radius r until the best meeting <= 2r - max edge
        (or, for long trips, one unbounded forward search).

        On a shortest path of cost T <= 2r - w_max some node has forward and backward cost
        both <= r, so min(ds + dt) over nodes reached from both sides equals T.
        Returns the meeting (weight inf if unreachable) and both predecessor arrays.
        """
        if source == target:
            return Meeting(0.0, source), None, None
        if straight_m > self.long_route_m:  # balls of radius T/2 would cover most of the city
            ds, pf = dijkstra(self.forward, indices=source, return_predecessors=True)
            return Meeting(float(ds[target]), target), pf, None
        radius = float(encode(np.array(0.5 * straight_m / ASSUMED_SPEED_MS + 30.0), np.array(0.0)))
        radius += 2 * self.max_edge_w
        while True:
            ds, pf = dijkstra(self.forward, indices=source, limit=radius, return_predecessors=True)
            dt, pb = dijkstra(self.backward, indices=target, limit=radius, return_predecessors=True)
            total = ds + dt
            node = int(np.argmin(total))
            best = float(total[node])
            if best <= 2 * radius - self.max_edge_w:
                return Meeting(best, node), pf, pb
            radius = radius * GROWTH if radius < MAX_RADIUS else float("inf")

    @staticmethod
    def path_nodes(
        meeting: Meeting, pred_f: NDArray[np.int32] | None, pred_b: NDArray[np.int32] | None
    ) -> list[int]:
        """Node sequence source -> target through the meeting node."""
        if pred_f is None:
            return [meeting.node]
        nodes: list[int] = []
        node = meeting.node
        while node >= 0:
            nodes.append(node)
            node = int(pred_f[node])
        nodes.reverse()
        if pred_b is None:
            return nodes
        node = int(pred_b[meeting.node])
        while node >= 0:
            nodes.append(node)
            node = int(pred_b[node])
        return nodes

    def reverse_costs(self, target: int, limit_s: float) -> NDArray[np.float64]:
        """Packed cost from every node to `target` (inf beyond `limit_s`): one reverse Dijkstra."""
        # scipy is untyped (Any); dijkstra returns its float64 distance array for one index.
        costs: NDArray[np.float64] = dijkstra(self.backward, indices=target, limit=encode_seconds(limit_s))
        return costs
