"""Index over street and place NAMES (a few thousand): exact, prefix and 1-typo lookup.

Never touches individual addresses: callers resolve house numbers afterwards.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .text import deletions, normalize, within_one_edit

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
                found[i] = within_one_edit(text, self._keys[i])
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
        out: list[int] = []
        for entity in self._iter_prefix(text, words):
            if entity not in out:
                out.append(entity)
                if len(out) >= limit:
                    break
        return out

    def _iter_prefix(self, text: str, words: bool) -> Iterator[int]:
        keys, ids = (self._wkeys, self._wids) if words else (self._keys, self._ids)
        i = bisect_left(keys, text)
        while i < len(keys) and keys[i].startswith(text):
            yield ids[i]
            i += 1

    def search(self, text: str, typos_as_fallback: bool = False) -> Iterator[NameHit]:
        """Lazily, best first and without repeats: exact name, name prefix, later-word prefix,
        names within one edit, then names with one complete word within one edit. With
        ``typos_as_fallback`` the (costlier) corrections are searched only when nothing matched as typed."""
        seen: set[int] = set()
        for hit in self._as_typed(text):
            if hit.entity not in seen:
                seen.add(hit.entity)
                yield hit
        if typos_as_fallback and seen:
            return
        for hit in self._corrected(text):
            if hit.entity not in seen:
                seen.add(hit.entity)
                yield hit

    def _as_typed(self, text: str) -> Iterator[NameHit]:
        exact = self._names.get(text)
        if exact is not None:
            yield NameHit(exact, EXACT, 0)
        for entity in self._iter_prefix(text, words=False):
            yield NameHit(entity, PREFIX, 0)
        if len(text) >= 2:
            for entity in self._iter_prefix(text, words=True):
                yield NameHit(entity, WORD_PREFIX, 0)

    def _corrected(self, text: str) -> Iterator[NameHit]:
        if len(text) >= 3:
            for entity, distance in self._names.within_one(text):
                yield NameHit(entity, TYPO, distance)
        if len(text) >= 4:
            yield from self._word_typos(text)

    def _word_typos(self, text: str) -> Iterator[NameHit]:
        """A typo inside a partially typed name: correct one complete word, then prefix-search."""
        words = text.split(" ")
        complete = words[:-1] if len(words) > 1 else words
        for k, word in enumerate(complete):
            if len(word) < 3 or self._words.get(word) is not None:
                continue
            for word_id, _ in self._words.within_one(word)[:4]:
                fixed = " ".join([*words[:k], self._vocabulary[word_id], *words[k + 1 :]])
                for entity in self._iter_prefix(fixed, words=False):
                    yield NameHit(entity, TYPO, 1)
                for entity in self._iter_prefix(fixed, words=True):
                    yield NameHit(entity, TYPO, 1)


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
