"""What an import of a shop's history has done so far: its counts and its checkpoint."""

from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True)
class ImportCounts:
    """Rows read, events they made and what tracking said of them, profiles written."""

    rows: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    profiles_created: int = 0
    profiles_updated: int = 0

    def __add__(self, other: "ImportCounts") -> "ImportCounts":
        return ImportCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ImportCheckpoint:
    """How far the import of one file got: ``records`` read and applied, in file order.

    ``key`` names the file by format and content, so a changed file starts again from its first
    row (its events already logged are duplicates, so nothing is counted twice).
    """

    key: str
    records: int = 0
    counts: ImportCounts = field(default_factory=ImportCounts)
    finished: bool = False

    def advanced(self, records: int, counts: ImportCounts) -> "ImportCheckpoint":
        return replace(self, records=self.records + records, counts=self.counts + counts)
