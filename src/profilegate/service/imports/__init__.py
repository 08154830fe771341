"""Onboarding a shop's history: ``profilegate import`` and its Python entry point.

    from profilegate.service.imports import ImportFormat, ImportOptions, import_files

    summary = await import_files(repos, [Path("orders_export.csv")],
                                 ImportOptions(ImportFormat.SHOPIFY_ORDERS, tracking_rules), now)

See ``docs/import.md`` for the formats, what each column becomes, and the guarantees.
"""

from profilegate.service.imports.formats import ImportFormat
from profilegate.service.imports.records import WrongFormat
from profilegate.service.imports.run import (
    FileResult,
    FileState,
    FileTakenOver,
    ImportOptions,
    ImportProgress,
    ImportStopped,
    ImportSummary,
    RejectedRow,
    import_files,
)
from profilegate.service.imports.shopify_customers import CustomerOptions

__all__ = [
    "CustomerOptions",
    "FileResult",
    "FileState",
    "FileTakenOver",
    "ImportFormat",
    "ImportOptions",
    "ImportProgress",
    "ImportStopped",
    "ImportSummary",
    "RejectedRow",
    "WrongFormat",
    "import_files",
]
