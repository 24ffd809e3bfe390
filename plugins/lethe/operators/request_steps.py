"""The steps every subject-request route shares: load a request (or refuse it when
malformed), settle a failed try, decide whether a try is the last, clean a form's text.

Identities never travel through Airflow: XComs, logs and ledger entries carry request
ids, rights, counts and category ids only. The control schema is reached through
:class:`~lethe.control.hook.PrivacyControlHook` (the operators' ``hook``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from lethe.control.ledger import AuditEntry
from lethe.exceptions import LetheError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook
    from lethe.control.requests import SubjectRequest

log = logging.getLogger(__name__)

#: The longest free text a form field may hold.
MAX_TEXT = 2000


def final_try(context: Context, retries: int | None = None) -> bool:
    """Whether this try of the task is its last: Airflow retries while ``try_number`` is at
    most ``max_tries`` (the task's ``retries``, raised when a person clears the task)."""
    ti = context["ti"]
    max_tries = max(int(getattr(ti, "max_tries", 0) or 0), int(retries or 0))
    return not (max_tries and int(ti.try_number) <= max_tries)


def refuse_malformed(
    control: PrivacyControlHook, context: Context, request_id: str, exc: Exception
) -> AirflowFailException:
    """Refuse a request whose stored identities are malformed, the same way on every route:
    ``refused`` with the reason on the request, a ``request_refused`` ledger entry.

    :return: the exception that ends the task (nothing is retried: the request cannot
        succeed as it is).
    """
    reason = f"malformed identities: {exc}"
    refused = control.move_if_allowed(request_id, to="refused", reason=reason)
    control.record(
        AuditEntry.for_task(
            context["ti"],
            action="request_refused",
            outcome="refused" if refused else "failed",
            request_id=request_id,
            details={"reason": reason},
        )
    )
    return AirflowFailException(reason)


def load_or_refuse(
    control: PrivacyControlHook, context: Context, request_id: str
) -> SubjectRequest:
    """The request ``request_id``, as every route loads it before acting.

    :raises AirflowFailException: the request's stored identities are malformed (it is
        refused, :func:`refuse_malformed`) or there is no such request; no retry helps.
    """
    from lethe.control.requests import RequestError
    from lethe.domain.identities import InvalidIdentity

    try:
        return control.load_request(request_id)
    except InvalidIdentity as exc:
        raise refuse_malformed(control, context, request_id, exc) from None
    except RequestError as exc:  # no such request: no retry will find one
        raise AirflowFailException(str(exc)) from None


def settle_failure(
    control: PrivacyControlHook,
    context: Context,
    request_id: str,
    *,
    action: str,
    exc: Exception,
    retries: int,
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
    from lethe.control.requests import describe_error, is_transient

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
        done = control.progress(request_id)
        if done:
            details["progress"] = done
        if last:
            control.move_if_allowed(request_id, to="failed", reason=reason)
        control.record(
            AuditEntry.for_task(
                ti,
                action=action,
                outcome="failed" if last else "retrying",
                request_id=request_id,
                details=details,
            )
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


def clean_text(
    name: str, value: Any, *, required: bool = False, limit: int = MAX_TEXT
) -> str | None:
    """A free-text field from a form: a string, no NUL or control characters, bounded.

    :raises AirflowFailException: naming the field, never quoting its value.
    """
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
