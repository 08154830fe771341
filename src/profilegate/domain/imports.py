"""What an import of a shop's history has done so far: its counts and its checkpoint."""

from dataclasses import dataclass, field, fields, replace
from datetime import datetime


@dataclass(frozen=True)
class ImportCounts:
    """Rows read and what became of them, events and what tracking said of them, profiles written.

    The parts add up: ``rows`` = the rows that made events + ``customers`` + ``rows_rejected``,
    and ``events`` = ``accepted`` + ``duplicates`` + ``rejected``.
    """

    rows: int = 0
    rows_rejected: int = 0  # rows refused whole: they made no event and changed no profile
    customers: int = 0  # customer rows applied to a profile
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0  # events tracking refused
    profiles_created: int = 0
    profiles_updated: int = 0

    def __add__(self, other: "ImportCounts") -> "ImportCounts":
        return ImportCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def rows_to_events(self) -> int:
        return self.rows - self.rows_rejected - self.customers

    @property
    def any_rejected(self) -> bool:
        return self.rows_rejected > 0 or self.rejected > 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, stored: dict[str, int]) -> "ImportCounts":
        """The counts as stored; a count an older checkpoint did not keep is 0."""
        names = {f.name for f in fields(cls)}
        return cls(**{name: int(value) for name, value in stored.items() if name in names})


@dataclass(frozen=True)
class ImportCheckpoint:
    """How far the import of one file got: ``records`` read and applied, in file order.

    ``key`` names the file by format and content, so a changed file starts again from its first
    row (its events already logged are duplicates, so nothing is counted twice). ``run_at``: the
    time of the run that holds the file (every write of a run carries it); ``finished_at``: the
    time of the run that imported its last row.
    """

    key: str
    records: int = 0
    counts: ImportCounts = field(default_factory=ImportCounts)
    finished: bool = False
    run_at: datetime | None = None
    finished_at: datetime | None = None

    def advanced(self, records: int, counts: ImportCounts) -> "ImportCheckpoint":
        return replace(self, records=self.records + records, counts=self.counts + counts)
