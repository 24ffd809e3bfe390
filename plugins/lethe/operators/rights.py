"""Carrying out one claimed subject request of the erase, restrict or rectify route.

Access and portability go to the ``subject_export`` DAG
(:mod:`lethe.operators.export_trigger`, :mod:`lethe.operators.export`); the work itself
is in :mod:`lethe.subjects`. XComs, logs and ledger entries carry request ids, rights,
counts and category ids only.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from lethe.connections import CONTROL_DB
from lethe.control.ledger import AuditEntry
from lethe.operators.request_steps import load_or_refuse, settle_failure

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook
    from lethe.control.requests import SubjectRequest


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

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            return self._answer(context)
        finally:
            self.hook.close()

    def _answer(self, context: Context) -> dict[str, Any]:
        control = self.hook
        request = load_or_refuse(control, context, str(self.request_id))
        if request.status != "in_progress":
            self.log.info("Request %s is %s; nothing to do", request.request_id, request.status)
            return {"request_id": request.request_id, "status": request.status}
        try:
            return self._carry_out(context, request)
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

    def _carry_out(self, context: Context, request: SubjectRequest) -> dict[str, Any]:
        from lethe.control.requests import RequestError
        from lethe.policy import load_catalog
        from lethe.policy.vocabulary import Right
        from lethe.subjects import actions

        control = self.hook
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

        protection_for = control.protection

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
            related = control.request_details(request.request_id)["related_request_id"]
            placed = actions.restrict(control, request.request_id, related, resolution)
            counts["restrictions_placed"] = placed
            extra["related_request_id"] = related
            outcomes = [actions.Outcome("*", "All your data", "restricted", placed)]
        elif right is Right.RECTIFICATION:
            corrections = control.request_details(request.request_id)["corrections"]
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
        control.transition(
            request.request_id,
            to="completed",
            reason="nothing found" if nothing else f"{right.value} carried out",
            answer=answer,
            identity_types_used=resolution.types_used,
        )
        stores = control.progress(request.request_id)
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
        control.record(
            AuditEntry.for_task(
                context["ti"],
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
        )
        self.log.info("Request %s (%s) completed: %s", request.request_id, right.value, counts)
        return {
            "request_id": request.request_id,
            "right": right.value,
            "status": "completed",
            "result": answer["result"],
            **counts,
        }
