"""A segment: a named, validated rule, optionally maintaining an extension on its members."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from profilegate.domain.segment_rules import Rule

SEGMENT_KEY = r"^[a-z][a-z0-9-]{0,62}$"
MAX_RULE_LENGTH = 4000
RULE_SOURCE_PREFIX = "rule:"


class Segment(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(pattern=SEGMENT_KEY)
    name: str = Field(min_length=1, max_length=200)
    rule_text: str = Field(min_length=1, max_length=MAX_RULE_LENGTH)
    rule: Rule
    maintains_extension: str | None = None  # set on members, removed from others, source "rule:<key>"
    version: int = 1
    updated_at: datetime
    updated_by: str

    @property
    def extension_source(self) -> str:
        return f"{RULE_SOURCE_PREFIX}{self.key}"
