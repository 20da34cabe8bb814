"""Address book: geocode, autocomplete, reverse and id lookup over the address arrays."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .data import CityData
from .geo import Projection
from .model import Address, InvalidQuery, Poi
from .names import EXACT, PREFIX, TYPO, WORD_PREFIX, NameHit, NameIndex
from .spatial import PointGrid
from .text import ParsedQuery, parse_query

KIND_CONFIDENCE = {EXACT: 1.0, PREFIX: 0.8, WORD_PREFIX: 0.7, TYPO: 0.85}
ADDR_PREFIX, POI_PREFIX = "A", "P"


class AddressBook:
    """Addresses sorted by (street, house number) plus a name index over streets and POIs."""

    def __init__(self, data: CityData, proj: Projection) -> None:
        """Index street and POI names and build a KD-tree over projected address points."""
        self._data = data
        self._streets = [str(s) for s in data.street_name]
        self._postcodes = [str(p) for p in data.postcodes]
        self._pois = [str(p) for p in data.poi_name]
        self._ptr = data.street_addr_ptr
        self._numbers = data.addr_number
        self._n_streets = len(self._streets)
        self.index = NameIndex([*self._streets, *self._pois])
        x, y = proj.to_xy(data.addr_lat, data.addr_lon)
        self._grid = PointGrid(x, y)
        self._proj = proj

    @property
    def count(self) -> int:
        """Number of street addresses."""
        return len(self._numbers)

    def row_address(self, row: int) -> Address:
        """Address object of one row."""
        d = self._data
        street = self._streets[int(d.addr_street[row])]
        number = int(d.addr_number[row])
        postcode = self._postcodes[int(d.addr_postcode[row])]
        return Address(
            address_id=f"{ADDR_PREFIX}{row}",
            label=f"{number} {street}, {postcode}",
            street=street,
            house_number=number,
            postcode=postcode,
            lat=float(d.addr_lat[row]),
            lon=float(d.addr_lon[row]),
        )

    def poi_address(self, poi: int) -> Address:
        """The address of a POI, labelled with the POI's name."""
        base = self.row_address(int(self._data.poi_addr[poi]))
        label = f"{self._pois[poi]}, {base.house_number} {base.street}, {base.postcode}"
        return Address(
            f"{POI_PREFIX}{poi}", label, base.street, base.house_number, base.postcode, base.lat, base.lon
        )

    def pois(self) -> list[Poi]:
        """All points of interest."""
        kinds = self._data.poi_kind
        return [Poi(self._pois[i], str(kinds[i]), self.poi_address(i)) for i in range(len(self._pois))]

    def by_id(self, address_id: str) -> Address | None:
        """Address by id ("A<row>" or "P<poi>"), None when unknown or malformed."""
        if not isinstance(address_id, str) or len(address_id) < 2 or not address_id[1:].isdigit():
            return None
        number = int(address_id[1:])
        if address_id[0] == ADDR_PREFIX and number < self.count:
            return self.row_address(number)
        if address_id[0] == POI_PREFIX and number < len(self._pois):
            return self.poi_address(number)
        return None

    def nearest_row(self, lat: float, lon: float) -> tuple[int, float]:
        """Nearest address row and distance in metres."""
        return self._grid.nearest(*self._proj.point_xy(lat, lon))

    def house_row(self, street: int, number: int | None) -> tuple[int, bool] | None:
        """Row of `number` on `street` (nearest existing number if absent); (row, exact)."""
        lo, hi = int(self._ptr[street]), int(self._ptr[street + 1])
        if lo == hi:
            return None
        if number is None:
            return lo, True
        numbers = self._numbers
        i = lo + int(np.searchsorted(numbers[lo:hi], number))
        if i < hi and numbers[i] == number:
            return i, True
        best = i if i < hi else hi - 1
        if i > lo and (i >= hi or abs(numbers[i - 1] - number) <= abs(numbers[i] - number)):
            best = i - 1
        return best, False

    def _resolve(self, hit: NameHit, parsed: ParsedQuery) -> tuple[Address, float] | None:
        """Turn a name hit plus house number/postcode into an address and confidence."""
        confidence = KIND_CONFIDENCE[hit.kind]
        if hit.entity >= self._n_streets:
            return self.poi_address(hit.entity - self._n_streets), confidence
        found = self.house_row(hit.entity, parsed.house_number)
        if found is None:
            return None
        row, exact = found
        if not exact:
            confidence *= 0.6
        elif parsed.house_number is None:
            confidence *= 0.7
        address = self.row_address(row)
        if parsed.postcode is not None and parsed.postcode != address.postcode:
            confidence *= 0.8
        return address, round(confidence, 3)

    def _hits(self, parsed: ParsedQuery, limit: int, typos_as_fallback: bool = False) -> Iterator[NameHit]:
        """Name hits for the expanded text ("st" -> "street"), then for the text as typed."""
        seen: set[int] = set()
        texts = [parsed.text, parsed.unexpanded] if parsed.unexpanded else [parsed.text]
        for text in texts:
            for hit in self.index.search(text, typos_as_fallback):
                if hit.entity not in seen:
                    seen.add(hit.entity)
                    yield hit
                    if len(seen) >= limit:
                        return

    def geocode(self, query: str) -> tuple[Address, float] | None:
        """Best single match and confidence in 0..1."""
        parsed = parse_query(query)
        if not parsed.text:
            return None
        for hit in self._hits(parsed, limit=3):
            resolved = self._resolve(hit, parsed)
            if resolved is not None:
                return resolved
        return None

    def autocomplete(self, query: str, limit: int = 5) -> list[Address]:
        """Up to `limit` suggestions, best first (names first, then the house number)."""
        if not isinstance(limit, int) or limit < 1 or limit > 100:
            raise InvalidQuery("limit must be an integer in 1..100")
        parsed = parse_query(query)
        if not parsed.text:
            return []
        results: list[Address] = []
        # Suggestions for what the rider is typing: corrections only when nothing starts with it.
        for hit in self._hits(parsed, limit=limit, typos_as_fallback=True):
            resolved = self._resolve(hit, parsed)
            if resolved is not None:
                results.append(resolved[0])
                if len(results) >= limit:
                    break
        return results
