"""How long a category's data is kept: the retention kinds of a policy file.

``retention:`` is a fixed ISO-8601 duration (``P6M``, short for ``{kind: fixed, period:
P6M}``), ``{kind: until_service_end, grace: P30D}`` or ``{kind: customer_defined, default,
maximum, setting}``; :data:`Retention` is their tagged union, as
:class:`~lethe.policy.models.Category` declares its field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from lethe.policy.base import PolicyModel
from lethe.policy.primitives import ConnId, Duration, Identifier, QualifiedName
from lethe.policy.rules import require_not_longer
from lethe.policy.vocabulary import Identity, RetentionKind


class FixedRetention(PolicyModel):
    """A fixed retention period, written as a bare ISO-8601 duration (``retention: P6M``)."""

    kind: Literal["fixed"] = Field(
        "fixed", description="Always 'fixed'; implied when retention is a bare duration."
    )
    period: Duration = Field(description="How long the data is kept after its age timestamp.")

    def human(self) -> str:
        """The retention in words, e.g. ``"6 months"``."""
        return self.period.human()


class UntilServiceEnd(PolicyModel):
    """Kept until the service ends ("tot einde dienstverlening"), plus an optional grace.

    The store's age is the service's end date (a contract's ``ended_at`` or the customer's
    last end date); NULL means the service has not ended and nothing expires.
    """

    kind: Literal["until_service_end"] = Field(description="Always 'until_service_end'.")
    grace: Duration | None = Field(
        None,
        description="How long after the end date the data is still kept (final invoice, "
        "hand-over); none means it expires the moment the service ends.",
    )

    def human(self) -> str:
        """The retention in words, e.g. ``"until service end + 30 days"``."""
        if self.grace is None:
            return "until service end"
        return f"until service end + {self.grace.human()}"


class CustomerSetting(PolicyModel):
    """Where the per-customer retention is read: a table with one value in days per key."""

    conn_id: ConnId = Field(description="Airflow connection of the database holding it.")
    table: QualifiedName = Field(description="Schema-qualified table (or view) name.")
    key_column: Identifier = Field(description="Column holding the customer's identity.")
    value_column: Identifier = Field(
        description="Column holding the chosen retention in days (NULL or <= 0: the default)."
    )
    identity: Identity = Field(
        Identity.CUSTOMER_ID,
        description="The identity type of key_column; every store of the category must "
        "expose a subject of this type so each item can be matched to its setting.",
    )


class CustomerDefinedRetention(PolicyModel):
    """Retention chosen by each customer ("afhankelijk van de gebruiker"), within a maximum."""

    kind: Literal["customer_defined"] = Field(description="Always 'customer_defined'.")
    default: Duration = Field(description="Applies when the customer chose nothing.")
    maximum: Duration = Field(description="The longest a customer may choose; longer is capped.")
    setting: CustomerSetting = Field(description="Where the customer's choice is read.")

    @model_validator(mode="after")
    def _default_within_maximum(self) -> CustomerDefinedRetention:
        require_not_longer(
            self.default,
            self.maximum,
            field="default",
            message=f"default {self.default} is longer than maximum {self.maximum}",
        )
        return self

    def human(self) -> str:
        """E.g. ``"customer-defined (default 90 days, max 1 year)"``."""
        return f"customer-defined (default {self.default.human()}, max {self.maximum.human()})"

    def effective(self, days: int | None) -> Duration:
        """The period for a customer who chose ``days`` (None or <= 0: no choice)."""
        if days is None or days <= 0:
            return self.default
        chosen = Duration(days=days)
        return self.maximum if chosen.exceeds(self.maximum) else chosen


def _retention_shorthand(value: Any) -> Any:
    """``retention: P6M`` means ``{kind: fixed, period: P6M}``."""
    if isinstance(value, str):
        return {"kind": RetentionKind.FIXED.value, "period": value}
    if isinstance(value, dict) and isinstance(value.get("kind"), str):
        known = [kind.value for kind in RetentionKind]
        if value["kind"] not in known:
            raise ValueError(f"unknown retention kind {value['kind']!r}; expected one of {known}")
    return value


def _retention_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


Retention = Annotated[
    Annotated[
        Annotated[FixedRetention, Tag("fixed")]
        | Annotated[UntilServiceEnd, Tag("until_service_end")]
        | Annotated[CustomerDefinedRetention, Tag("customer_defined")],
        Discriminator(
            _retention_tag,
            custom_error_type="retention_kind",
            custom_error_message=(
                "expected an ISO-8601 duration (P6M), {kind: until_service_end, grace: ...} "
                "or {kind: customer_defined, default: ..., maximum: ..., setting: ...}"
            ),
        ),
    ],
    BeforeValidator(_retention_shorthand),
]
