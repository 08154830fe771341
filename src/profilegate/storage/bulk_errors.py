"""What a failed bulk write reported: whether it failed only on ``_id``s already stored.

An ``_id`` already there is how the logs, the identity keys and the checkout documents learn
that a write was made before (a replay, a race lost); any other write error, and any write
concern error (the write is then not known to be durable), must fail the operation. The
server reports both beside each other in a bulk write's reply
(https://www.mongodb.com/docs/manual/reference/command/insert/#output,
https://www.mongodb.com/docs/manual/reference/command/update/#output).
"""

from pymongo.errors import BulkWriteError

# https://www.mongodb.com/docs/manual/reference/error-codes/ (DuplicateKey)
DUPLICATE_KEY = 11000


def only_duplicates(error: BulkWriteError) -> bool:
    """Whether ``error`` holds only duplicate-key write errors and no write concern error."""
    if error.details.get("writeConcernErrors"):
        return False
    return all(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", []))
