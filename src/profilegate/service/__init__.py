"""Use cases as plain async functions over repositories; ``now`` is always passed in."""
