"""Index over street and place NAMES (a few thousand): exact, prefix and 1-typo lookup.

Never touches individual addresses: callers resolve house numbers afterwards.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .text import deletions, normalize, osa_distance

EXACT, PREFIX, WORD_PREFIX, TYPO = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class NameHit:
    """One matching name: entity id, match kind (EXACT..TYPO) and edit distance."""

    entity: int
    kind: int
    distance: int


class DeleteDict:
    """Symmetric-delete dictionary: finds keys within OSA distance 1 of a string."""

    def __init__(self, keys: Sequence[str]) -> None:
        """Index the distinct non-empty `keys` (their position is the returned id)."""
        self._keys = list(keys)
        self._exact: dict[str, int] = {}
        for i, key in enumerate(self._keys):
            if key:
                self._exact.setdefault(key, i)
        table: dict[str, list[int]] = {}
        for key, i in self._exact.items():
            for variant in deletions(key):
                table.setdefault(variant, []).append(i)
        self._deletes = {k: tuple(v) for k, v in table.items()}

    def get(self, text: str) -> int | None:
        """Id of the key equal to `text`."""
        return self._exact.get(text)

    def within_one(self, text: str) -> list[tuple[int, int]]:
        """(id, distance) of keys within OSA distance 1, best first (distance, length, id)."""
        candidates: list[int] = list(self._deletes.get(text, ()))
        for variant in deletions(text):
            hit = self._exact.get(variant)
            if hit is not None:
                candidates.append(hit)
            candidates.extend(self._deletes.get(variant, ()))
        found: dict[int, int] = {}
        for i in candidates:
            if i not in found:
                found[i] = osa_distance(text, self._keys[i], cap=2)
        hits = [(i, d) for i, d in found.items() if d <= 1]
        hits.sort(key=lambda h: (h[1], len(self._keys[h[0]]), h[0]))
        return hits


class NameIndex:
    """Sorted-array prefix search over names and name suffixes plus 1-typo dictionaries."""

    def __init__(self, names: Sequence[str]) -> None:
        """Index `names[i]` as entity i; empty names are not searchable."""
        self._norm = [normalize(n) for n in names]
        self._names = DeleteDict(self._norm)
        self._keys, self._ids = _sorted_keys(self._norm, word_suffixes=False)
        self._wkeys, self._wids = _sorted_keys(self._norm, word_suffixes=True)
        vocabulary = sorted({w for key in self._norm for w in key.split(" ") if w})
        self._words = DeleteDict(vocabulary)
        self._vocabulary = vocabulary

    def normalized(self, entity: int) -> str:
        """Normalised name of an entity."""
        return self._norm[entity]

    def exact(self, text: str) -> int | None:
        """Entity whose normalised name equals `text` (already normalised)."""
        return self._names.get(text)

    def prefix(self, text: str, limit: int, words: bool = False) -> list[int]:
        """Up to `limit` entities whose name (or a later word of it) starts with `text`."""
        keys, ids = (self._wkeys, self._wids) if words else (self._keys, self._ids)
        out: list[int] = []
        i = bisect_left(keys, text)
        while i < len(keys) and len(out) < limit and keys[i].startswith(text):
            if ids[i] not in out:
                out.append(ids[i])
            i += 1
        return out

    def search(self, text: str, limit: int) -> list[NameHit]:
        """Best first: exact name, name prefix, later-word prefix, 1-typo name, 1-typo word."""
        hits: list[NameHit] = []
        seen: set[int] = set()

        def add(entity: int, kind: int, distance: int) -> None:
            if entity not in seen and len(hits) < limit:
                seen.add(entity)
                hits.append(NameHit(entity, kind, distance))

        exact = self._names.get(text)
        if exact is not None:
            add(exact, EXACT, 0)
        for entity in self.prefix(text, limit):
            add(entity, PREFIX, 0)
        if len(hits) < limit and len(text) >= 2:
            for entity in self.prefix(text, limit, words=True):
                add(entity, WORD_PREFIX, 0)
        if len(hits) < limit and len(text) >= 3:
            for entity, distance in self._names.within_one(text):
                add(entity, TYPO, distance)
        if not hits and len(text) >= 4:
            self._word_typos(text, limit, add)
        return hits

    def _word_typos(self, text: str, limit: int, add: Callable[[int, int, int], None]) -> None:
        """A typo inside a partially typed name: correct one complete word, then prefix-search."""
        words = text.split(" ")
        complete = words[:-1] if len(words) > 1 else words
        for k, word in enumerate(complete):
            if len(word) < 3 or self._words.get(word) is not None:
                continue
            for word_id, _ in self._words.within_one(word)[:4]:
                fixed = " ".join([*words[:k], self._vocabulary[word_id], *words[k + 1 :]])
                for entity in self.prefix(fixed, limit):
                    add(entity, TYPO, 1)
                for entity in self.prefix(fixed, limit, words=True):
                    add(entity, TYPO, 1)


def _sorted_keys(norm: list[str], word_suffixes: bool) -> tuple[list[str], list[int]]:
    """Sorted (key, entity) columns: whole names, or each name from its 2nd, 3rd... word on."""
    pairs: list[tuple[str, int]] = []
    for i, key in enumerate(norm):
        if not key:
            continue
        if word_suffixes:
            words = key.split(" ")
            pairs.extend((" ".join(words[k:]), i) for k in range(1, len(words)))
        else:
            pairs.append((key, i))
    pairs.sort()
    return [p[0] for p in pairs], [p[1] for p in pairs]
