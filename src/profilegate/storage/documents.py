"""Type aliases for the driver's generic document types."""

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

type Document = dict[str, Any]
type Collection = AsyncCollection[Document]
type Database = AsyncDatabase[Document]
