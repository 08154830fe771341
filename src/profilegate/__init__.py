"""profilegate: a profile-enrichment GraphQL gateway for online shops."""

__version__ = "0.1.0"
