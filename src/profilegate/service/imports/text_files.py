"""Opening an import file as UTF-8 text, refusing binary files, other encodings and a BOM."""

import codecs
from collections.abc import Iterator
from pathlib import Path

from profilegate.service.imports.records import WrongFormat

SNIFF_BYTES = 65_536


def check_text(path: Path) -> None:
    """Raise :class:`WrongFormat` unless the start of ``path`` is BOM-less UTF-8 text."""
    with path.open("rb") as stream:
        head = stream.read(SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        raise WrongFormat(str(path), "starts with a byte order mark (BOM); save it as UTF-8 without BOM")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
        raise WrongFormat(str(path), "is binary or UTF-16, not UTF-8 text")
    try:
        # The sniffed bytes may end inside a character: only a complete one is judged.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as error:
        raise WrongFormat(str(path), f"is not UTF-8 text (byte {error.start} cannot be decoded)") from None


def text_lines(path: Path) -> Iterator[str]:
    """The lines of ``path``, read in buffered chunks (never the whole file at once)."""
    with path.open(encoding="utf-8", newline="") as stream:
        yield from stream
