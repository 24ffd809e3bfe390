"""Operators and the sensor of subject requests: intake, pick-up, routing and deadlines.

Identities never travel through Airflow: XComs, logs and ledger entries carry request
ids, rights, counts and category ids only. The work itself is in :mod:`lethe.subjects`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from lethe.connections import CONTROL_DB
from lethe.control import connect
from lethe.exceptions import LetheError

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

ROUTES = {
    "export": ("access", "portability"),
    "erase": ("erasure", "objection", "withdraw_consent"),
    "restrict": ("restriction",),
    "rectify": ("rectification",),
}
MAX_TEXT = 2000
VERIFICATION_METHODS = ("id_document", "known_contact", "in_person", "other")


def _record(
    control,
    context: Context,
    *,
    action: str,
    outcome: str,
    request_id: str | None,
    counts: dict[str, int] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    from lethe.control import ledger

    ledger.record(
        control,
        ledger.AuditEntry(
            action=action,
            outcome=outcome,
            **ledger.task_fields(context["ti"]),
            request_id=request_id,
            counts=counts or {},
            details=details or {},
        ),
    )


def final_try(context: Context, retries: int | None = None) -> bool:
    """Whether this try of the task is its last: Airflow retries while ``try_number`` is at
    most ``max_tries`` (the task's ``retries``, raised when a person clears the task)."""
    ti = context["ti"]
    max_tries = max(int(getattr(ti, "max_tries", 0) or 0), int(retries or 0))
    return not (max_tries and int(ti.try_number) <= max_tries)


def refuse_malformed(
    control, context: Context, request_id: str, exc: Exception
) -> AirflowFailException:
    """Refuse a request whose stored identities are malformed, the same way on every route:
    ``refused`` with the reason on the request, a ``request_refused`` ledger entry.

    :return: the exception that ends the task (nothing is retried: the request cannot
        succeed as it is).
    """
    from lethe.control.requests import move_if_allowed

    reason = f"malformed identities: {exc}"
    refused = move_if_allowed(control, request_id, to="refused", reason=reason)
    _record(
        control,
        context,
        action="request_refused",
        outcome="refused" if refused else "failed",
        request_id=request_id,
        details={"reason": reason},
    )
    return AirflowFailException(reason)


def load_or_refuse(control, context: Context, request_id: str):
    """The request ``request_id``, as every route loads it before acting.

    :raises AirflowFailException: the request's stored identities are malformed (it is
        refused, :func:`refuse_malformed`) or there is no such request; no retry helps.
    """
    from lethe.control.requests import RequestError, load_request
    from lethe.domain.identities import InvalidIdentity

    try:
        return load_request(control, request_id)
    except InvalidIdentity as exc:
        raise refuse_malformed(control, context, request_id, exc) from None
    except RequestError as exc:  # no such request: no retry will find one
        raise AirflowFailException(str(exc)) from None


def settle_failure(
    control, context: Context, request_id: str, *, action: str, exc: Exception, retries: int
) -> AirflowFailException | None:
    """What a failed try means for the request it was answering, recorded in the ledger.

    A failure that cannot pass by itself (a lethe error that is not transient, see
    :func:`lethe.control.requests.is_transient`; an AirflowFailException) and the failure
    of the last try move the request to ``failed`` with the reason. Any other failure
    leaves it ``in_progress`` for Airflow's next try: the ledger entry says ``retrying``,
    with the try number. Both entries list what the request's tries removed so far, per
    store (counts only).

    :return: the AirflowFailException that ends the task for good, or None when the
        caller re-raises ``exc`` for a retry.
    """
    from lethe.control.requests import describe_error, is_transient, move_if_allowed, progress

    transient = is_transient(exc)
    permanent = isinstance(exc, AirflowFailException) or (
        isinstance(exc, LetheError) and not transient
    )
    last = permanent or final_try(context, retries)
    reason = describe_error(exc)
    ti = context["ti"]
    details: dict[str, Any] = {
        "reason": reason,
        "transient": transient,
        "try_number": int(ti.try_number),
    }
    try:
        control.rollback()  # the failure may have left a transaction aborted
        done = progress(control, request_id)
        if done:
            details["progress"] = done
        if last:
            move_if_allowed(control, request_id, to="failed", reason=reason)
        _record(
            control,
            context,
            action=action,
            outcome="failed" if last else "retrying",
            request_id=request_id,
            details=details,
        )
    except Exception as record_exc:  # e.g. the control database is the one that is down
        log.warning(
            "Could not record the failure of request %s: %s",
            request_id,
            type(record_exc).__name__,
        )
        if not last:
            return None
    if not last:
        log.warning(
            "Request %s: try %d failed (%s); Airflow tries again",
            request_id,
            int(ti.try_number),
            reason,
        )
        return None
    return AirflowFailException(reason)


def _clean_text(
    name: str, value: Any, *, required: bool = False, limit: int = MAX_TEXT
) -> str | None:
    """A free-text field from a form: a string, no NUL or control characters, bounded."""
    if value in (None, ""):
        if required:
            raise AirflowFailException(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise AirflowFailException(f"{name} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise AirflowFailException(f"{name} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise AirflowFailException(f"{name} contains control characters")
    return value.strip()


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

    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.control.requests import RIGHTS
        from lethe.domain.identities import InvalidIdentity, normalise_all
        from lethe.intake import find_intake_request, form_identities, form_text

        ti = context["ti"]
        with connect(self.control_conn_id) as control:
            earlier = find_intake_request(control, ti.dag_id, ti.run_id)
        if earlier:  # a retry: the first try stored the request (and its ledger entry)
            self.log.info("Request %s was registered by an earlier try", earlier[0])
            return {"request_id": earlier[0], "right": earlier[1]}
        if self.right not in RIGHTS:
            raise AirflowFailException(f"unknown right; expected one of {', '.join(RIGHTS)}")
        params = context["params"]
        try:
            identities = normalise_all(form_identities(params, self._identity_fields()))
            verified_by = form_text(params, self.verified_by_field)
            details = form_text(params, self.details_field)
            corrections = form_text(params, self.corrections_field)
        except InvalidIdentity as exc:
            raise AirflowFailException(str(exc)) from None
        verified_by = _clean_text("verified_by", verified_by, required=True, limit=200)
        if self.verification_method not in VERIFICATION_METHODS:
            raise AirflowFailException(
                f"verification_method must be one of {', '.join(VERIFICATION_METHODS)}"
            )
        verified_on = self._verified_on()
        details = _clean_text("details", details)
        corrections = self._corrections(corrections)
        with connect(self.control_conn_id) as control:
            related = self._related(control)
            request_id = self._insert(
                control,
                context,
                identities,
                verified_by,
                verified_on,
                details,
                related,
                corrections,
            )
            # Commits the row and its ledger entry together.
            _record(
                control,
                context,
                action="request_registered",
                outcome="ok",
                request_id=request_id,
                details={
                    "right": self.right,
                    "identity_types": sorted(i.value for i in identities),
                    "verification_method": self.verification_method,
                },
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
                _clean_text("corrections (a corrected value)", str(value), limit=500)
            cleaned[str(category_id)] = dict(changes)
        return cleaned

    def _related(self, control) -> str | None:
        if self.right != "restriction":
            if self.related_request_id:
                raise AirflowFailException("related_request_id belongs to a restriction only")
            return None
        if not self.related_request_id:
            raise AirflowFailException(
                "a restriction names the rectification, erasure or objection request it "
                "waits for (related_request_id)"
            )
        with control.cursor() as cur:
            cur.execute(
                "SELECT request_right, status FROM privacy.subject_requests"
                " WHERE request_id = %s::uuid",
                (str(self.related_request_id),),
            )
            row = cur.fetchone()
        control.rollback()
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

    def _insert(
        self, control, context, identities, verified_by, verified_on, details, related, corrections
    ) -> str:
        """Insert the request (not committed: the ledger entry commits both)."""
        import json

        from lethe.domain.identities import as_json

        ti = context["ti"]
        with control.cursor() as cur:
            cur.execute(
                "INSERT INTO privacy.subject_requests (request_right, status, identities,"
                " source, verified_by, verification_method, verified_at, details,"
                " related_request_id, corrections, received_at, intake_dag_id, intake_run_id)"
                " VALUES (%s, 'verified', %s::jsonb, 'register_subject_request', %s, %s, %s,"
                " %s, %s::uuid, %s::jsonb, now(), %s, %s) RETURNING request_id::text",
                (
                    self.right,
                    json.dumps(as_json(identities)),
                    verified_by,
                    self.verification_method,
                    verified_on,
                    details,
                    related,
                    None if corrections is None else json.dumps(corrections),
                    ti.dag_id,
                    ti.run_id,
                ),
            )
            (request_id,) = cur.fetchone()
        return request_id


class SubjectRequestSensor(BaseSensorOperator):
    """Waits until a verified subject request is pending.

    Runs deferrable (the wait happens in the triggerer, see
    :class:`lethe.triggers.SubjectRequestTrigger`) or in reschedule/poke mode. When none
    arrives within ``timeout`` the task is skipped, not failed: an empty run is normal.

    :param conn_id: connection of the control schema. (templated)
    :param deferrable: wait in the triggerer instead of a worker slot.
    """

    template_fields = ("conn_id",)

    def __init__(
        self, *, conn_id: str = CONTROL_DB, deferrable: bool = False, **kwargs: Any
    ) -> None:
        kwargs.setdefault("soft_fail", True)
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.deferrable = deferrable

    def poke(self, context: Context) -> bool:
        from lethe.control.requests import count_verified

        with connect(self.conn_id) as control:
            pending = count_verified(control)
        self.log.info("%d verified subject request(s) pending", pending)
        return pending > 0

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        from lethe.triggers import SubjectRequestTrigger

        self.defer(
            trigger=SubjectRequestTrigger(
                conn_id=self.conn_id,
                poll_interval=float(self.poke_interval),
                timeout=float(self.timeout),
            ),
            method_name="execute_complete",
        )
        return None

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        if event.get("status") != "found":
            raise AirflowSkipException("no verified subject request arrived")
        self.log.info("%d verified subject request(s) pending", event.get("pending", 0))


class ClaimSubjectRequestsOperator(BaseOperator):
    """Claim the verified requests of some rights for this run, each exactly once.

    Overlapping runs and the other claim tasks of the same run claim side by side (row
    locks with SKIP LOCKED); every claimed request moves to ``in_progress``.

    :param rights: the rights this task claims. (templated)
    :param limit: the most requests one run claims. (templated)
    :param control_conn_id: connection of the control schema. (templated)
    :return: the claimed request ids, for the mapped task that carries them out.
    """

    template_fields = ("rights", "limit", "control_conn_id")

    def __init__(
        self,
        *,
        rights: tuple[str, ...] | list[str],
        limit: int = 20,
        control_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rights = rights
        self.limit = limit
        self.control_conn_id = control_conn_id

    def execute(self, context: Context) -> list[str]:
        from lethe.control.requests import claim_verified

        ti = context["ti"]
        with connect(self.control_conn_id) as control:
            claimed = claim_verified(
                control,
                claimer=f"{ti.dag_id}/{ti.run_id}",
                rights=list(self.rights),
                limit=int(self.limit),
            )
            for request_id, right in claimed:
                _record(
                    control,
                    context,
                    action="request_claimed",
                    outcome="ok",
                    request_id=request_id,
                    details={"right": right},
                )
        self.log.info("Claimed %d request(s) of %s", len(claimed), ", ".join(self.rights))
        return [request_id for request_id, _ in claimed]


class SubjectRequestOperator(BaseOperator):
    """Carry out one claimed request: erasure, objection, consent withdrawal, restriction
    or rectification, across every store the policies name.

    Resolves the subject's identities along the policies' links, acts per category (or
    refers client-controlled data to the customer), stores the neutral answer on the
    request, completes it, and writes the real reasons to the ledger. A request whose
    stored identities are malformed is refused with the reason; nothing is changed.

    A failed try is settled by :func:`settle_failure`: a store briefly unreachable is
    retried by Airflow (the request stays ``in_progress``; an erasure's progress per store
    is kept, see :func:`lethe.subjects.actions.erase`); the last try, or an error no retry
    can fix, moves the request to ``failed`` with the reason.

    :param request_id: the claimed request. (templated)
    :param control_conn_id: connection of the control schema. (templated)
    :param policy_dir: directory of the policy files. (templated)
    """

    template_fields = ("request_id", "control_conn_id", "policy_dir")

    def __init__(
        self,
        *,
        request_id: str,
        control_conn_id: str = CONTROL_DB,
        policy_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id
        self.control_conn_id = control_conn_id
        self.policy_dir = policy_dir

    def execute(self, context: Context) -> dict[str, Any]:
        with connect(self.control_conn_id) as control:
            request = load_or_refuse(control, context, str(self.request_id))
            if request.status != "in_progress":
                self.log.info("Request %s is %s; nothing to do", request.request_id, request.status)
                return {"request_id": request.request_id, "status": request.status}
            try:
                return self._carry_out(control, context, request)
            except Exception as exc:
                failed = settle_failure(
                    control,
                    context,
                    request.request_id,
                    action=f"request_{request.right}",
                    exc=exc,
                    retries=self.retries,
                )
                if failed is None:
                    raise  # Airflow tries again; the request stays in_progress
                raise failed from exc

    def _carry_out(self, control, context: Context, request) -> dict[str, Any]:
        from lethe.control.protection import load_protection
        from lethe.control.requests import RequestError, load_details, progress, transition
        from lethe.policy import load_catalog
        from lethe.policy.vocabulary import Right
        from lethe.subjects import actions

        catalog = load_catalog(self.policy_dir)
        categories = catalog.categories()
        right = Right(request.right)
        if right in (Right.ACCESS, Right.PORTABILITY):
            raise RequestError(f"{right.value} requests go to the subject_export DAG")
        resolution = actions.resolve_request(
            control, request.request_id, request.identities, categories
        )
        extra: dict[str, Any] = {}
        counts: dict[str, int] = {}

        def protection_for(category):
            return load_protection(control, category)

        if right in (Right.ERASURE, Right.OBJECTION, Right.WITHDRAW_CONSENT):
            outcomes = actions.erase(
                control,
                request.request_id,
                right,
                categories,
                resolution,
                protection_for=protection_for,
            )
            if right is Right.WITHDRAW_CONSENT:
                counts["withdrawals_recorded"] = actions.record_consent_withdrawal(
                    control, request.request_id, resolution
                )
        elif right is Right.RESTRICTION:
            related = load_details(control, request.request_id)["related_request_id"]
            placed = actions.restrict(control, request.request_id, related, resolution)
            counts["restrictions_placed"] = placed
            extra["related_request_id"] = related
            outcomes = [actions.Outcome("*", "All your data", "restricted", placed)]
        elif right is Right.RECTIFICATION:
            corrections = load_details(control, request.request_id)["corrections"]
            outcomes, hashes = actions.rectify(
                control,
                request.request_id,
                {c.id: c for c in categories},
                corrections,
                resolution,
                protection_for=protection_for,
            )
            extra["value_hashes"] = hashes
        else:
            raise RequestError(f"no route carries out {right.value} requests")

        answer = actions.answer(right.value, resolution, outcomes)
        nothing = answer["result"] == "nothing_found"
        transition(
            control,
            request.request_id,
            to="completed",
            reason="nothing found" if nothing else f"{right.value} carried out",
            answer=answer,
            identity_types_used=resolution.types_used,
        )
        stores = progress(control, request.request_id)
        if stores:  # an erasure: what each store did, over every try of the request
            extra["stores"] = stores
            counts["redacted"] = sum(
                c["redacted"] for category in stores.values() for c in category.values()
            )
        counts.update(
            {
                "categories": len(outcomes),
                "items": sum(o.items or 0 for o in outcomes),
                "referred": sum(o.outcome == "referred" for o in outcomes),
                "kept": sum(o.outcome in ("kept", "partly_erased") for o in outcomes),
            }
        )
        _record(
            control,
            context,
            action=f"request_{right.value}",
            outcome="nothing_found" if nothing else "completed",
            request_id=request.request_id,
            counts=counts,
            details={
                "identity_types_used": resolution.types_used,
                "resolved_identity_types": list(resolution.resolved_types),
                "categories": actions.ledger_details(outcomes),
                **extra,
            },
        )
        self.log.info("Request %s (%s) completed: %s", request.request_id, right.value, counts)
        return {
            "request_id": request.request_id,
            "right": right.value,
            "status": "completed",
            "result": answer["result"],
            **counts,
        }


class LiftRestrictionsOperator(BaseOperator):
    """Lift processing restrictions whose related request has been decided.

    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("control_conn_id",)

    def __init__(self, *, control_conn_id: str = CONTROL_DB, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.control_conn_id = control_conn_id

    def execute(self, context: Context) -> dict[str, int]:
        from lethe.subjects.actions import lift_resolved_restrictions

        with connect(self.control_conn_id) as control:
            lifted = lift_resolved_restrictions(control)
            for request_id, count in lifted:
                _record(
                    control,
                    context,
                    action="restriction_lifted",
                    outcome="ok",
                    request_id=request_id,
                    counts={"restrictions_lifted": count},
                )
        return {"requests": len(lifted), "restrictions_lifted": sum(c for _, c in lifted)}


class SubjectRequestDeadlineOperator(BaseOperator):
    """List requests due within ``warn_days`` and overdue ones; fail when any is overdue.

    Counts the run's logical date as "now". Give the task an ``on_failure_callback``
    notifier so an overdue request reaches a person.

    :param warn_days: how far ahead a deadline counts as due soon. (templated)
    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("warn_days", "control_conn_id")

    def __init__(self, *, warn_days: int = 7, control_conn_id: str = CONTROL_DB, **kwargs: Any):
        super().__init__(**kwargs)
        self.warn_days = warn_days
        self.control_conn_id = control_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.control.requests import deadline_report
        from lethe.operators.retention import run_moment

        now = run_moment(context)
        with connect(self.control_conn_id) as control:
            report = deadline_report(control, now=now, warn_days=int(self.warn_days))
            _record(
                control,
                context,
                action="deadline_check",
                outcome="overdue" if report.overdue else "ok",
                request_id=None,
                counts={
                    "open": report.open_requests,
                    "due_soon": len(report.due_soon),
                    "overdue": len(report.overdue),
                },
            )
        for request_id, right, due in report.due_soon:
            self.log.warning("Due soon: %s request %s, due %s", right, request_id, due.isoformat())
        for request_id, right, due in report.overdue:
            self.log.error("OVERDUE: %s request %s, was due %s", right, request_id, due.isoformat())
        summary = {
            "open": report.open_requests,
            "due_soon": [r[0] for r in report.due_soon],
            "overdue": [r[0] for r in report.overdue],
        }
        if report.overdue:
            raise AirflowFailException(
                f"{len(report.overdue)} subject request(s) overdue: "
                + ", ".join(r[0] for r in report.overdue)
            )
        return summary


class ExtendSubjectRequestDeadlineOperator(BaseOperator):
    """Extend a request's deadline by one or two months, with the reason recorded.

    :param request_id: the request. (templated)
    :param months: 1 or 2. (templated)
    :param reason: why (recorded on the request and in the ledger). (templated)
    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("request_id", "months", "reason", "control_conn_id")

    def __init__(
        self,
        *,
        request_id: str,
        months: int | str,
        reason: str,
        control_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id
        self.months = months
        self.reason = reason
        self.control_conn_id = control_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.control.requests import RequestError, extend_deadline

        reason = _clean_text("reason", self.reason, required=True, limit=500)
        with connect(self.control_conn_id) as control:
            try:
                due = extend_deadline(
                    control, str(self.request_id), months=int(self.months), reason=reason or ""
                )
            except (RequestError, ValueError) as exc:
                raise AirflowFailException(str(exc)) from None
            _record(
                control,
                context,
                action="deadline_extended",
                outcome="ok",
                request_id=str(self.request_id),
                # The reason is free text: it stays on the request, not in the ledger.
                details={"months": int(self.months), "due_at": due.isoformat()},
            )
        return {"request_id": str(self.request_id), "due_at": due.isoformat()}


class ReopenSubjectRequestOperator(BaseOperator):
    """Put a failed request back to ``verified``, with the reason recorded, so that
    ``subject_requests`` picks it up again.

    The ledger entry (``request_reopened``) records who reopened it (the user who
    triggered the run; the run id when Airflow knows no user) and why. A request that
    is not ``failed`` is refused (the message names its state).

    :param request_id: the failed request. (templated)
    :param reason: why it may be tried again (recorded on the request and in the ledger;
        no personal data). (templated)
    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("request_id", "reason", "control_conn_id")

    def __init__(
        self,
        *,
        request_id: str,
        reason: str,
        control_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id
        self.reason = reason
        self.control_conn_id = control_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.control.requests import RequestError, reopen

        reason = _clean_text("reason", self.reason, required=True, limit=500) or ""
        if not reason:
            raise AirflowFailException("reason is required")
        dag_run = context.get("dag_run")
        who = getattr(dag_run, "triggering_user_name", None) or f"run {context['ti'].run_id}"
        with connect(self.control_conn_id) as control:
            try:
                reopen(control, str(self.request_id), reason=reason)
            except RequestError as exc:
                raise AirflowFailException(str(exc)) from None
            _record(
                control,
                context,
                action="request_reopened",
                outcome="ok",
                request_id=str(self.request_id),
                details={"reopened_by": who, "reason": reason},
            )
        self.log.info("Request %s reopened by %s", self.request_id, who)
        return {"request_id": str(self.request_id), "status": "verified"}
