"""What one store command may carry, measured on the embedded store (docs/limits.md).

The SQLite engine translates an update made only of ``$set``/``$unset`` into one
``json_set(document, path, value, ...)`` / ``json_remove(document, path, ...)`` call, and
SQLite allows a function 127 arguments: 63 ``$set`` paths and 126 ``$unset`` paths per update
(the 64th answers ``too many arguments on function json_set``). A filter's ``$in`` becomes a
chain of ``OR``s, and SQLite's expression trees stop at a depth of 1,000: 495 values in an
``_id: {$in}`` (the 496th answers ``Expression tree is too large``). MongoDB has neither limit;
the memory engine neither. Writes and lookups built for a batch stay under these, split or
packed.
"""

from collections.abc import Sequence

# Measured edges of the embedded store's SQLite engine (mongoeco 4.11.0, SQLite 3.40).
STORE_SET_PATHS = 63
STORE_UNSET_PATHS = 126
STORE_IN_VALUES = 495
# What our commands carry at most: the paths at the store's edge (an update's fields are
# counted exactly); the values of one ``$in`` well under it, since a filter's other clauses
# deepen the expression too.
MAX_SET_PATHS = STORE_SET_PATHS
MAX_UNSET_PATHS = STORE_UNSET_PATHS
MAX_IN_VALUES = 400


def chunked[T](values: Sequence[T], size: int = MAX_IN_VALUES) -> list[list[T]]:
    """``values`` in order, in lists of at most ``size`` (none for none)."""
    return [list(values[start : start + size]) for start in range(0, len(values), size)]
