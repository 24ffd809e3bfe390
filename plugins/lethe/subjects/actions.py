"""Carrying out subject requests across every store: erasure, objection, consent withdrawal,
restriction and rectification. (Access and portability go to the subject_export DAG.)

Each action returns one :class:`Outcome` per category. The answer to the subject is built
from them in neutral words: it never reveals a legal hold or a lawful-interception duty
beyond what the privacy statement itself says. The real reason is kept for the ledger
(``reason_code``).

What an action records in the control schema goes through the
:class:`~lethe.control.hook.PrivacyControlHook` it is given (``control``): no SQL here.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lethe.domain.labels import store_label
from lethe.domain.protection import Protection
from lethe.policy.vocabulary import Controller, Identity, LegalBasis, Right

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from lethe.control.hook import PrivacyControlHook
    from lethe.policy.models import Category
    from lethe.subjects.resolution import Resolution

log = logging.getLogger(__name__)

#: What the subject reads; the same words for every reason to keep data, so that a legal
#: hold cannot be told apart from a statutory retention period.
ANSWER_TEXT = {
    "erased": "Removed.",
    "anonymised": "Your personal details were removed from these records.",
    "partly_erased": "Removed, except data a legal obligation requires us to keep for now; "
    "that is removed as soon as the obligation ends.",
    "kept": "Kept for now: a legal obligation requires us to keep this data; it is removed as "
    "soon as the obligation ends.",
    "referred": "Your organisation decides about this data; your request was passed on to it.",
    "nothing_found": "We hold no data of yours in this category.",
    "restricted": "Processing is paused until your related request has been decided.",
    "rectified": "Corrected.",
    "manual_review": "A colleague will make this correction by hand.",
    "not_applicable": "This right does not apply to this data.",
}


@dataclass(frozen=True)
class Outcome:
    """What a request did to one category.

    :param reason_code: the real reason, for the ledger only (``legal_hold``,
        ``legal_obligation``, ``client_controller`` ...).
    """

    category_id: str
    title: str
    outcome: str
    items: int | None = None
    reason_code: str | None = None


#: How data kept under a legal obligation is named to the subject: by what the privacy
#: statement itself says, never by the duty behind it (an interception order, say).
STATUTORY = ("statutory_retention", "Data the law requires us to keep for a fixed period")


#: What the answer says about the request as a whole.
RESULT_TEXT = {
    "carried_out": "Your request was carried out as listed per category.",
    "nothing_found": "We found no data of yours that this request applies to; nothing was changed.",
}
#: Outcomes that mean the subject's data was found (and acted on, or kept for a hold).
_FOUND = frozenset(
    {"erased", "anonymised", "partly_erased", "rectified", "manual_review", "restricted"}
)


def found_nothing(outcomes: Iterable[Outcome]) -> bool:
    """Whether a request found none of the subject's data in any store it searched.

    Categories not searched (referred to the customer; kept under a legal obligation
    without a search) neither count as found nor make a request "found nothing" alone.
    """
    outcomes = list(outcomes)
    found = any(
        o.outcome in _FOUND or (o.outcome == "kept" and o.reason_code != "legal_obligation")
        for o in outcomes
    )
    return not found and any(o.outcome == "nothing_found" for o in outcomes)


def answer(right: str, resolution: Resolution, outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """The answer to the subject, as stored on the request (neutral wording): per category,
    and as a whole (``result``: ``nothing_found`` when no store held the subject's data)."""
    outcomes = list(outcomes)
    result = "nothing_found" if found_nothing(outcomes) else "carried_out"
    entries = []
    for o in outcomes:
        category, title = (
            STATUTORY if o.reason_code == "legal_obligation" else (o.category_id, o.title)
        )
        entries.append(
            {
                "category": category,
                "title": title,
                "outcome": o.outcome,
                "items": o.items,
                "explanation": ANSWER_TEXT[o.outcome],
            }
        )
    return {
        "right": right,
        "result": result,
        "summary": RESULT_TEXT[result],
        "identity_types_used": resolution.types_used,
        "categories": entries,
    }


def resolve_request(
    control: PrivacyControlHook,
    request_id: str,
    given: Mapping[Identity, frozenset[str]],
    categories,
) -> Resolution:
    """Resolve the subject's identities, merged with what earlier tries of the request
    resolved, and keep the result on the request for later tries.

    An earlier try may have erased the very rows whose links revealed an identity (the
    contact person whose row named their phone number): without the saved resolution a
    retry would search by fewer identities, miss data and answer "nothing found".
    """
    from lethe.subjects.resolution import Resolution, resolve

    fresh = resolve(given, categories)
    saved = control.load_resolution(request_id)

    def merged(now: Mapping[Identity, frozenset[str]], key: str) -> dict[Identity, frozenset[str]]:
        union = {identity: set(values) for identity, values in now.items()}
        for identity, values in (saved.get(key) or {}).items():
            union.setdefault(Identity(identity), set()).update(values)
        return {identity: frozenset(values) for identity, values in union.items() if values}

    subject = merged(fresh.subject, "subject")
    organisations = merged(fresh.organisations, "organisations")
    control.save_resolution(request_id, subject=subject, organisations=organisations)
    return Resolution(
        subject=subject,
        organisations=organisations,
        given_types=fresh.given_types,
        resolved_types=tuple(
            sorted({i.value for i in (*subject, *organisations) if i not in given})
        ),
    )


def ledger_details(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Per category: outcome, item count and the real reason (no personal data)."""
    return {
        o.category_id: {k: v for k, v in asdict(o).items() if k not in ("category_id", "title")}
        for o in outcomes
    }


def acts_on(category: Category, right: Right) -> bool:
    """Whether the provider acts on ``right`` itself (else the request goes to the client)."""
    if category.controller is Controller.PROVIDER:
        return True
    instruction = category.client_instruction
    return instruction is not None and right in instruction.act_on


def holds_only(protection: Protection) -> Protection:
    """Legal holds without restrictions: a request of the subject itself is not paused by
    the subject's own restriction (which exists to wait for exactly this decision)."""
    return Protection(category_held=protection.category_held, held=protection.held)


def _subject_in(category: Category, subject: Mapping[Any, frozenset[str]]) -> bool:
    return any(identity in subject for identity in category.identities)


def refer(
    control: PrivacyControlHook, request_id: str, category: Category, resolution: Resolution
) -> Outcome:
    """Record that a request about client-controlled data goes to the customer."""
    customers = sorted(resolution.organisations.get(Identity.CUSTOMER_ID, ())) or [None]
    control.refer(request_id, category.id, customers)
    return Outcome(category.id, category.title, "referred", reason_code="client_controller")


def erase(
    control: PrivacyControlHook,
    request_id: str,
    right: Right,
    categories: Iterable[Category],
    resolution: Resolution,
    *,
    protection_for,
) -> list[Outcome]:
    """Erase (or anonymise) the subject's data in every category ``right`` reaches.

    ``right`` is ERASURE (every category whose basis allows erasure now), OBJECTION (the
    legitimate-interest categories) or WITHDRAW_CONSENT (consent categories, and those
    that honour a withdrawal). Data kept under a legal obligation stays until its period
    ends; data under a legal hold stays; client-controlled data is referred.

    What each store did is added to the request's progress
    (``privacy.request_progress``) as soon as the store completes, and so is what a store
    that failed part-way had already removed (a :class:`~lethe.exceptions.PurgeError`'s
    ``removed``) before the error goes on. A category's outcome is computed from the
    totals of every try of the request, so a retry that finds nothing left where an
    earlier try erased still answers "erased".

    :param protection_for: category -> Protection (holds and restrictions now in force).
    """
    from lethe.stores import adapter_for

    outcomes: list[Outcome] = []
    for category in categories:
        if category.statement_row is None:
            continue  # derived copies (exports) go by their own, short retention
        if right is Right.WITHDRAW_CONSENT:
            applies = category.has_right(right) or category.honours_consent_withdrawal
        else:
            applies = category.has_right(right)
        if not applies:
            if right is Right.ERASURE and category.legal_basis is LegalBasis.LEGAL_OBLIGATION:
                outcomes.append(
                    Outcome(category.id, category.title, "kept", reason_code="legal_obligation")
                )
            continue
        if not acts_on(category, right):
            outcomes.append(refer(control, request_id, category, resolution))
            continue
        if not _subject_in(category, resolution.subject):
            outcomes.append(Outcome(category.id, category.title, "nothing_found", 0))
            continue
        protection = holds_only(protection_for(category))
        for store in category.stores:
            label = store_label(store)
            adapter = adapter_for(store, category)
            try:
                with adapter.session():
                    result = adapter.erase(resolution.subject, protection)
            except Exception as exc:
                _add_partial(control, request_id, category.id, store, exc)
                raise
            control.add_progress(
                request_id,
                category.id,
                label,
                removed=result.removed,
                anonymised=result.anonymised,
                # Mentions of the subject blanked in other people's free text, where the
                # adapter reports them.
                redacted=result.redacted,
                withheld=result.withheld,
            )
        totals = control.progress(request_id).get(category.id, {})
        outcomes.append(erase_outcome(category, totals.values()))
    return outcomes


def _add_partial(
    control: PrivacyControlHook, request_id: str, category_id: str, store: Any, exc: Exception
) -> None:
    """Add what a store that failed part-way had removed (when its error says so)."""
    from lethe.policy.models import Anonymise

    removed = getattr(exc, "removed", 0) or 0
    if not removed:
        return
    # An anonymising store's partial count is of rows anonymised, not deleted.
    kind = "anonymised" if isinstance(getattr(store, "on_expiry", None), Anonymise) else "removed"
    try:
        control.add_progress(request_id, category_id, store_label(store), **{kind: removed})
    except Exception as record_exc:  # the store's error matters more; it goes on below
        log.warning(
            "Could not record the partial erasure of %s: %s",
            store_label(store),
            type(record_exc).__name__,
        )


def erase_outcome(category: Category, stores: Iterable[Mapping[str, int]]) -> Outcome:
    """A category's outcome from its stores' totals over every try of the request."""
    counts = list(stores)
    removed = sum(s.get("removed", 0) for s in counts)
    anonymised = sum(s.get("anonymised", 0) for s in counts)
    redacted = sum(s.get("redacted", 0) for s in counts)
    withheld = sum(s.get("withheld", 0) for s in counts)
    touched = removed + anonymised + redacted
    if withheld and touched:
        return Outcome(category.id, category.title, "partly_erased", touched, "legal_hold")
    if withheld:
        return Outcome(category.id, category.title, "kept", 0, "legal_hold")
    if not touched:
        return Outcome(category.id, category.title, "nothing_found", 0)
    if not removed:
        return Outcome(category.id, category.title, "anonymised", touched)
    return Outcome(category.id, category.title, "erased", touched)


def record_consent_withdrawal(
    control: PrivacyControlHook, request_id: str, resolution: Resolution
) -> int:
    """Keep the withdrawal per identity, so consent-based processing can check it."""
    rows = [(k.value, v) for k, values in resolution.subject.items() for v in sorted(values)]
    control.record_consent_withdrawals(request_id, rows)
    return len(rows)


def restrict(
    control: PrivacyControlHook, request_id: str, related_id: str, resolution: Resolution
) -> int:
    """Restrict processing of every person identity of the subject until ``related_id``
    (the rectification, erasure or objection being decided) is resolved.

    :return: the number of restrictions placed.
    """
    from lethe.subjects.resolution import ORGANISATION_IDENTITIES

    # A restriction is about a person, never a whole organisation.
    people = [
        (identity.value, value)
        for identity, values in sorted(resolution.subject.items())
        if identity not in ORGANISATION_IDENTITIES
        for value in sorted(values)
    ]
    return control.place_restrictions(request_id, related_id, people)


def rectify(
    control: PrivacyControlHook,
    request_id: str,
    categories_by_id: Mapping[str, Category],
    corrections: Mapping[str, Mapping[str, Any]] | None,
    resolution: Resolution,
    *,
    protection_for,
) -> tuple[list[Outcome], dict[str, Any]]:
    """Apply the corrections to the fields the policies mark rectifiable.

    A correction of an unknown category or of a field no store marks rectifiable opens a
    manual task (described by category and column only). With no structured corrections
    at all, one manual task asks a person to read the request.

    :return: the outcomes, and per category/column the hashes of old and new values.
    """
    from lethe.stores import adapter_for

    if not corrections:
        control.open_manual_task(request_id, "rectification", "apply the correction described")
        return [Outcome("*", "Your correction", "manual_review", reason_code="unstructured")], {}
    outcomes: list[Outcome] = []
    hashes: dict[str, Any] = {}
    for category_id, changes in sorted(corrections.items()):
        category = categories_by_id.get(category_id)
        if category is None or not category.has_right(Right.RECTIFICATION):
            control.open_manual_task(
                request_id, "rectification", f"correction of category {category_id}"
            )
            title = category.title if category else category_id
            outcomes.append(
                Outcome(category_id, title, "manual_review", reason_code="not_rectifiable")
            )
            continue
        if not acts_on(category, Right.RECTIFICATION):
            outcomes.append(refer(control, request_id, category, resolution))
            continue
        rectifiable = {c for s in category.stores for c in getattr(s, "rectifiable", ())}
        manual = sorted(set(changes) - rectifiable)
        for column in manual:
            control.open_manual_task(
                request_id, "rectification", f"correction of {category_id}.{column}"
            )
        rows = withheld = 0
        protection = holds_only(protection_for(category))
        for store in category.stores:
            own = {k: v for k, v in changes.items() if k in getattr(store, "rectifiable", ())}
            if not own:
                continue
            adapter = adapter_for(store, category)
            result = adapter.rectify(resolution.subject, own, protection)
            rows += result.rows
            withheld += result.withheld
            hashes[f"{category_id}:{store.location}"] = {
                "old": result.old_hashes,
                "new": result.new_hashes,
            }
        if manual and not rows:
            outcomes.append(Outcome(category_id, category.title, "manual_review", 0, "mixed"))
        elif withheld and not rows:
            outcomes.append(Outcome(category_id, category.title, "kept", 0, "legal_hold"))
        elif rows:
            outcomes.append(Outcome(category_id, category.title, "rectified", rows))
        else:
            outcomes.append(Outcome(category_id, category.title, "nothing_found", 0))
    return outcomes, hashes
