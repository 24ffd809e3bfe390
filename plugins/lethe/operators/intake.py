"""Intake: register a verified subject request from the ``register_subject_request`` form.

Everything typed freely into the form is personal data: it is read from the run's params
when the task runs, stored on the request row only (through
:class:`~lethe.control.hook.PrivacyControlHook`), and the XCom carries the request id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from lethe.connections import CONTROL_DB
from lethe.control.ledger import AuditEntry
from lethe.operators.request_steps import clean_text
from lethe.policy.vocabulary import REQUEST_RIGHTS

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook

#: How the person registering a request verified the requester.
VERIFICATION_METHODS = ("id_document", "known_contact", "in_person", "other")


class RegisterSubjectRequestOperator(BaseOperator):
    """Register a verified subject request from the trigger form, validated first.

    Nothing is stored unless every field is valid: the right, at least one identity
    (normalised: E.164 phone numbers, lower-case e-mail), the verification evidence, and
    for a restriction the open rectification/erasure/objection request it protects.

    Everything typed freely into the form (the subject's identities, who verified, the
    details, the corrections) is read from the run's params when the task runs, never
    through template fields (Airflow stores those rendered in its metadata database); it
    is stored on the request row only, and the XCom carries the request id. The row
    records this run, so a retry answers with the request its first try stored.
    Validation errors name the field, never the value.

    :param right: the right exercised. (templated)
    :param verification_method: how (id_document, known_contact, in_person, other). (templated)
    :param verified_on: when (ISO date). (templated)
    :param related_request_id: for a restriction: the request it protects. (templated)
    :param identity_fields: identity type -> the param (form field) holding its values;
        by default those of :data:`lethe.operators.wiring.IDENTITY_TEMPLATES`. (templated)
    :param verified_by_field: the param naming who verified the requester. (templated)
    :param details_field: the param holding the request in the subject's words. (templated)
    :param corrections_field: the param holding a rectification's corrections,
        ``{category_id: {column: new value}}``. (templated)
    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = (
        "right",
        "verification_method",
        "verified_on",
        "related_request_id",
        "identity_fields",
        "verified_by_field",
        "details_field",
        "corrections_field",
        "control_conn_id",
    )

    def __init__(
        self,
        *,
        right: str,
        verification_method: str,
        verified_on: str | None = None,
        related_request_id: str | None = None,
        identity_fields: dict[str, str] | None = None,
        verified_by_field: str = "verified_by",
        details_field: str = "details",
        corrections_field: str = "corrections",
        control_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.right = right
        self.verification_method = verification_method
        self.verified_on = verified_on
        self.related_request_id = related_request_id
        self.identity_fields = identity_fields
        self.verified_by_field = verified_by_field
        self.details_field = details_field
        self.corrections_field = corrections_field
        self.control_conn_id = control_conn_id

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            return self._register(context)
        finally:
            self.hook.close()

    def _register(self, context: Context) -> dict[str, Any]:
        from lethe.domain.identities import InvalidIdentity, normalise_all
        from lethe.intake import form_identities, form_text

        ti = context["ti"]
        earlier = self.hook.find_intake_request(ti.dag_id, ti.run_id)
        if earlier:  # a retry: the first try stored the request (and its ledger entry)
            self.log.info("Request %s was registered by an earlier try", earlier[0])
            return {"request_id": earlier[0], "right": earlier[1]}
        if self.right not in REQUEST_RIGHTS:
            raise AirflowFailException(
                f"unknown right; expected one of {', '.join(REQUEST_RIGHTS)}"
            )
        params = context["params"]
        try:
            identities = normalise_all(form_identities(params, self._identity_fields()))
            verified_by = form_text(params, self.verified_by_field)
            details = form_text(params, self.details_field)
            corrections = form_text(params, self.corrections_field)
        except InvalidIdentity as exc:
            raise AirflowFailException(str(exc)) from None
        verified_by = clean_text("verified_by", verified_by, required=True, limit=200)
        if self.verification_method not in VERIFICATION_METHODS:
            raise AirflowFailException(
                f"verification_method must be one of {', '.join(VERIFICATION_METHODS)}"
            )
        verified_on = self._verified_on()
        details = clean_text("details", details)
        corrections = self._corrections(corrections)
        related = self._related()
        # The row and its ledger entry are stored together, or neither.
        request_id = self.hook.register_verified(
            right=self.right,
            identities=identities,
            verified_by=verified_by or "",
            verification_method=self.verification_method,
            verified_at=verified_on,
            details=details,
            related_request_id=related,
            corrections=corrections,
            intake=(ti.dag_id, ti.run_id),
            entry=AuditEntry.for_task(
                ti,
                action="request_registered",
                outcome="ok",
                details={
                    "right": self.right,
                    "identity_types": sorted(i.value for i in identities),
                    "verification_method": self.verification_method,
                },
            ),
        )
        self.log.info("Registered %s request %s", self.right, request_id)
        return {"request_id": request_id, "right": self.right}

    def _identity_fields(self) -> dict[str, str]:
        from lethe.intake import identity_fields
        from lethe.operators.wiring import IDENTITY_TEMPLATES

        return dict(self.identity_fields or identity_fields(IDENTITY_TEMPLATES))

    def _verified_on(self) -> datetime:
        if not self.verified_on:
            return datetime.now(UTC)
        try:
            day = datetime.fromisoformat(str(self.verified_on))
        except ValueError:
            raise AirflowFailException("verified_on must be a date (YYYY-MM-DD)") from None
        day = day if day.tzinfo else day.replace(tzinfo=UTC)
        if day > datetime.now(UTC) + timedelta(days=1):
            raise AirflowFailException("verified_on lies in the future")
        return day

    def _corrections(self, corrections: Any) -> dict[str, dict[str, Any]] | None:
        if not corrections:
            return None  # a rectification without them: a person reads the details
        if self.right != "rectification":
            raise AirflowFailException("corrections belong to a rectification request only")
        if not isinstance(corrections, dict):
            raise AirflowFailException("corrections must map category ids to {column: value}")
        cleaned: dict[str, dict[str, Any]] = {}
        for category_id, changes in corrections.items():
            # Category ids and columns are form keys a person typed: never echoed.
            if not isinstance(changes, dict) or not changes:
                raise AirflowFailException("corrections: each category maps columns to values")
            for value in changes.values():
                if not isinstance(value, str | int | float | type(None)):
                    raise AirflowFailException("corrections: a corrected value is not a value")
                clean_text("corrections (a corrected value)", str(value), limit=500)
            cleaned[str(category_id)] = dict(changes)
        return cleaned

    def _related(self) -> str | None:
        if self.right != "restriction":
            if self.related_request_id:
                raise AirflowFailException("related_request_id belongs to a restriction only")
            return None
        if not self.related_request_id:
            raise AirflowFailException(
                "a restriction names the rectification, erasure or objection request it "
                "waits for (related_request_id)"
            )
        row = self.hook.right_and_status(str(self.related_request_id))
        if row is None:
            raise AirflowFailException(f"no subject request {self.related_request_id}")
        right, status = row
        if right not in ("rectification", "erasure", "objection"):
            raise AirflowFailException(
                "a restriction waits for a rectification, erasure or objection"
            )
        if status in ("completed", "refused"):
            raise AirflowFailException(f"the related request is already {status}")
        return str(self.related_request_id)
