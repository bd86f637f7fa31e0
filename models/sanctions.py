"""Sanctions screening: names against a list in OFAC's SDN CSV layout, matched fuzzily.

The list is OFAC's `sdn.csv` (no header; `ent_num, SDN_Name, SDN_Type, Program, …`, `-0-` for
null) with the aliases of `alt.csv` beside it when present; `BOURSE_SANCTIONS_SDN_CSV` points
at it, and unset the small fictional sample in `models/data/sanctions/` is used. Individuals
are written "LAST, First Middle"; they are compared as "first middle last".

Matching: both sides are transliterated to ASCII (`unidecode`: "Borís" is "Boris"),
lower-cased, stripped of punctuation, and scored with rapidfuzz's `token_sort_ratio` (word
order does not matter; a letter or two may differ), also against the entry without its middle
names, so "Viktor Darkwater" finds "DARKWATER, Viktor Alexei". A score at or above the
threshold (`BOURSE_SANCTIONS_MATCH_THRESHOLD`, 88 of 100) is a hit: a human decides, so the
threshold leans to false positives. Vessels and aircraft are not compared with people's names.

Pure: loading reads a file once, screening touches nothing else. `SanctionsSource` is what the
services hold: the list as the files say now, re-read when OFAC's new file is dropped in (its
size or modification time changed), so a running platform screens against today's list
without a restart.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process
from unidecode import unidecode

SAMPLE_LIST = Path(__file__).parent / "data" / "sanctions" / "sdn.csv"
NULL = "-0-"
_NOT_PEOPLE = frozenset({"vessel", "aircraft"})
_PUNCTUATION = re.compile(r"[^a-z0-9 ]+")


@dataclass(frozen=True, slots=True)
class ListEntry:
    ent_num: str
    name: str  # as the list writes it
    program: str


@dataclass(frozen=True, slots=True)
class SanctionsMatch:
    entry: ListEntry
    matched_name: str  # the list's name or alias that matched
    score: float


def normalise(name: str) -> str:
    """ASCII, lower case, letters and digits only, single spaces."""
    flat = _PUNCTUATION.sub(" ", unidecode(name).lower())
    return " ".join(flat.split())


def _person_order(name: str) -> str:
    """OFAC writes individuals "LAST, First Middle": compare them as "First Middle LAST"."""
    last, sep, given = name.partition(",")
    return f"{given} {last}" if sep else name


def _clean(value: str | None) -> str:
    value = (value or "").strip()
    return "" if value == NULL else value


class SanctionsSource:
    """The current list of `sdn_csv` (and its `alt.csv`): loaded on first use, re-loaded when
    either file changes. A file that cannot be read keeps the last good list (logged by the
    caller's exception only on first load: a platform must not screen against nothing)."""

    def __init__(self, sdn_csv: Path | None, threshold: float = 88) -> None:
        self.path = sdn_csv or SAMPLE_LIST
        self.threshold = threshold
        self._list: SanctionsList | None = None
        self._seen: tuple[tuple[int, int], ...] = ()

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in (self.path, self.path.with_name("alt.csv")):
            try:
                st = path.stat()
            except FileNotFoundError:
                stamps.append((0, 0))
            else:
                stamps.append((st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def __call__(self) -> SanctionsList:
        stamp = self._stamp()
        if self._list is None or stamp != self._seen:
            try:
                loaded = SanctionsList.load(self.path, self.threshold)
            except OSError:
                if self._list is None:
                    raise
                return self._list  # mid-copy or unreadable: the last good list
            self._list, self._seen = loaded, stamp
        return self._list


class SanctionsList:
    """The names of one list, normalised once, searched per screening."""

    def __init__(self, entries: Iterable[tuple[ListEntry, str]], threshold: float = 88) -> None:
        self.threshold = threshold
        self._choices: list[str] = []
        self._owners: list[tuple[ListEntry, str]] = []
        for entry, name in entries:
            full = normalise(_person_order(name))
            if not full:
                continue
            words = full.split()
            variants = {full}
            if len(words) > 2:
                variants.add(f"{words[0]} {words[-1]}")  # without middle names
            for variant in variants:
                self._choices.append(variant)
                self._owners.append((entry, name))

    def __len__(self) -> int:
        return len({e.ent_num for e, _ in self._owners})

    @classmethod
    def load(cls, sdn_csv: Path | None = None, threshold: float = 88) -> SanctionsList:
        path = sdn_csv or SAMPLE_LIST
        entries: dict[str, ListEntry] = {}
        names: list[tuple[ListEntry, str]] = []
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.reader(f):
                if len(row) < 4 or not row[0].strip().isdigit():
                    continue  # OFAC's file ends with a control character line
                if _clean(row[2]).lower() in _NOT_PEOPLE:
                    continue
                entry = ListEntry(row[0].strip(), _clean(row[1]), _clean(row[3]))
                entries[entry.ent_num] = entry
                names.append((entry, entry.name))
        aliases = path.with_name("alt.csv")
        if aliases.exists():
            with aliases.open(newline="", encoding="utf-8", errors="replace") as f:
                for row in csv.reader(f):
                    owner = entries.get(row[0].strip()) if len(row) >= 4 else None
                    if owner is not None and (alias := _clean(row[3])):
                        names.append((owner, alias))
        return cls(names, threshold)

    def screen(self, name: str) -> SanctionsMatch | None:
        """The best entry matching `name` at or above the threshold, if any."""
        query = normalise(name)
        if not query or not self._choices:
            return None
        best = process.extractOne(
            query, self._choices, scorer=fuzz.token_sort_ratio, score_cutoff=self.threshold
        )
        if best is None:
            return None
        _, score, index = best
        entry, matched = self._owners[index]
        return SanctionsMatch(entry=entry, matched_name=matched, score=float(score))
