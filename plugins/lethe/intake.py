"""The subject forms' personal values: read when the task runs, redacted when the run ends.

Two DAGs take personal data through their trigger form: ``register_subject_request``
(the subject's identities, the request in their words, corrections) and
``subject_export`` (identities). Airflow keeps a run's form values in its own metadata
database (``dag_run.conf``), and the rendered template fields of its tasks
(``rendered_task_instance_fields``); erasure does not reach either. So:

- the operators read those values from the run's params when they execute, never through
  template fields, store them on the request row in the control schema, and pass on the
  request id only (:func:`form_identities`, :func:`form_text`);
- the row records the run that registered it
  (:meth:`lethe.control.hook.PrivacyControlHook.find_intake_request`), so a retry of that
  run answers the same request;
- when the run ends (success or failure), the listener :mod:`lethe.listeners` replaces
  every value of the run's conf that is not in :data:`KEPT_FIELDS` with an empty or
  ``[redacted]`` value of the same type (:func:`redacted_conf`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lethe.domain.identities import InvalidIdentity

if TYPE_CHECKING:
    from collections.abc import Mapping

#: What a redacted text field holds afterwards.
REDACTED = "[redacted]"
#: The conf key listing the fields a redaction emptied (their names only).
REDACTED_KEY = "redacted_fields"

#: Per intake DAG: the form fields whose values stay in the run's conf when it ends. Each
#: is a closed vocabulary, an id, a date, a flag or a number; everything else a person
#: typed (identities, free text, corrections, who verified) is redacted.
KEPT_FIELDS: dict[str, frozenset[str]] = {
    "register_subject_request": frozenset(
        {"right", "verification_method", "verified_on", "related_request_id"}
    ),
    "subject_export": frozenset(
        {"request_id", "right", "format", "include_recordings", "link_expiry_days"}
    ),
}

#: Form fields whose values are personal: Airflow's secrets masker hides values under these
#: names (``AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES``), e.g. in the api-server's audit log of
#: a trigger request, which keeps the request body. The embedded stack and docker-compose set
#: it; a test checks it covers every intake field that is not kept.
SENSITIVE_FIELDS = (
    "corrections",
    "customer_ids",
    "details",
    "emails",
    "phones",
    "verified_by",
    "visitor_ids",
)
#: The environment variable that tells Airflow about them.
SENSITIVE_FIELDS_ENV = {"AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": ",".join(SENSITIVE_FIELDS)}

_PARAM_TEMPLATE = re.compile(r"^\{\{\s*params\.([A-Za-z_]\w*)\s*\}\}$")


def identity_fields(templates: Mapping[str, str]) -> dict[str, str]:
    """Identity type -> the name of the form field holding its values.

    :param templates: identity type -> ``"{{ params.<field> }}"``, as
        :data:`lethe.operators.wiring.IDENTITY_TEMPLATES` gives them.
    :raises ValueError: a template is not a plain ``params`` reference.
    """
    fields = {}
    for identity, template in templates.items():
        match = _PARAM_TEMPLATE.match(template)
        if not match:
            raise ValueError(f"identity field of {identity}: expected '{{{{ params.<name> }}}}'")
        fields[identity] = match[1]
    return fields


def _empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


def _check_not_redacted(params: Mapping[str, Any], field: str) -> None:
    if field in (params.get(REDACTED_KEY) or ()) or params.get(field) == REDACTED:
        raise InvalidIdentity(
            f"{field}: this run's form values were redacted when it ended; trigger a new run"
        )


def form_identities(params: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """Identity type -> the values typed into the form (empty fields left out).

    The values are not validated here (:func:`lethe.domain.identities.normalise_all` does that).

    :raises InvalidIdentity: a field was redacted (the run ended before and was cleared).
    """
    found: dict[str, Any] = {}
    for identity, field in fields.items():
        _check_not_redacted(params, field)
        value = params.get(field)
        if not _empty(value):
            found[identity] = value
    return found


def form_text(params: Mapping[str, Any], field: str) -> Any:
    """The value of a personal form field other than an identity (free text, corrections).

    :raises InvalidIdentity: the field was redacted (the run ended before and was cleared).
    """
    _check_not_redacted(params, field)
    return params.get(field)


def redacted_conf(dag_id: str, conf: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``conf`` of a finished run of ``dag_id`` with its personal values removed.

    Each value outside :data:`KEPT_FIELDS` becomes an empty value of its type (a list
    ``[]``, an object ``{}``) or, for text, :data:`REDACTED`; their names are listed
    under :data:`REDACTED_KEY`. The shape stays valid for the form, so a cleared run
    reaches its operator, which says the values are gone.

    :return: the new conf, or None when ``dag_id`` is not an intake DAG or nothing is
        left to redact.
    """
    kept = KEPT_FIELDS.get(dag_id)
    if kept is None or not conf:
        return None
    result: dict[str, Any] = {}
    redacted = set(conf.get(REDACTED_KEY) or ())
    for key, value in conf.items():
        if key in kept or key == REDACTED_KEY or _empty(value) or value == REDACTED:
            result[key] = value
            continue
        if isinstance(value, list | tuple):
            result[key] = []
        elif isinstance(value, dict):
            result[key] = {}
        else:
            result[key] = REDACTED
        redacted.add(key)
    if result == dict(conf):
        return None
    result[REDACTED_KEY] = sorted(redacted)
    return result
