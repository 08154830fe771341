"""The domain's enums, registered once with the schema under their GraphQL names."""

import strawberry

from profilegate.domain.events import Channel, EventType
from profilegate.domain.identities import IdentityType
from profilegate.domain.keys import Role

strawberry.enum(
    IdentityType, name="IdentityType", description="The kinds of identity a profile can be found by."
)
strawberry.enum(Role, name="Role", description="What an API key may do.")
strawberry.enum(Channel, name="Channel", description="Where the customer did it.")
strawberry.enum(EventType, name="EventType", description="What the customer did.")
