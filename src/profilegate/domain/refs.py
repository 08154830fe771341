"""How every operation addresses a profile."""

from pydantic import BaseModel, ConfigDict

from profilegate.domain.identities import Identity


class ProfileRef(BaseModel):
    """How every operation addresses a profile: by its id or by one of its identities."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    identity: Identity | None = None

    @property
    def key(self) -> str | None:
        """The identity's key, ``id:<profile id>`` for an id, None for neither."""
        if self.identity is not None:
            return self.identity.key
        return None if self.id is None else id_key(self.id)

    def describe(self) -> str:
        if self.identity is not None:
            return self.identity.key
        return f"id {self.id}"


def id_key(profile_id: str) -> str:
    """How a reference by the profile's id is keyed (beside identity keys such as ``email:...``)."""
    return f"id:{profile_id}"
