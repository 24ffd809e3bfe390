"""
### Register a subject request

Support or compliance registers a request of a data subject here, **after verifying who
made it** (the privacy statement asks for the full name, the address and a copy of an ID
document with the citizen service number covered). `subject_requests` picks it up
within minutes.

**Trigger form:** the *right* (access, rectification, erasure, restriction, portability,
objection, withdraw_consent); the subject's *e-mail addresses*, *phone numbers* and/or
*customer ids* (at least one; phone numbers are stored in E.164, e-mail in lower case);
*who verified* the requester and *how* and *when*; the request in the subject's own
words (*details*); for a **restriction**, the rectification, erasure or objection
request it waits for; for a **rectification**, the *corrections* as
`{"<category id>": {"<column>": "<corrected value>"}}` (columns the policies mark
rectifiable are corrected automatically; anything else becomes a manual task).

Everything is validated before anything is stored: an unknown right, no identity, a
malformed value or a missing verification stops the run with a message naming the field,
and nothing is stored. (A value the form itself rejects is refused by Airflow, whose
message repeats the value.) Other tools may insert rows into `privacy.subject_requests`
directly; they are validated the same way when they are picked up.

**What stays in Airflow:** the identities, who verified, the details and the
corrections are stored on the request only; the task passes the request id on. When the
run ends, the `lethe` plugin (`plugins/lethe_plugin.py`) replaces them in the run's conf
with empty values or `[redacted]`. Details: `docs/subject-requests.md`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from lethe.operators.intake import VERIFICATION_METHODS, RegisterSubjectRequestOperator
from lethe.operators.wiring import UUID_PATTERN, identity_params
from lethe.policy.vocabulary import REQUEST_RIGHTS

_TEXT = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f]*$"

with DAG(
    dag_id="register_subject_request",
    description="Register a verified data-subject request (access, rectification, erasure, "
    "restriction, portability, objection, consent withdrawal)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    doc_md=__doc__,
    render_template_as_native_obj=True,
    params={
        "right": Param(
            "access",
            type="string",
            enum=list(REQUEST_RIGHTS),
            title="Right",
        ),
        **identity_params(),
        "verified_by": Param(
            "",
            type="string",
            minLength=2,
            maxLength=200,
            pattern=_TEXT,
            title="Verified by",
            description="Who checked the requester's identity.",
        ),
        "verification_method": Param(
            "id_document", type="string", enum=list(VERIFICATION_METHODS), title="How"
        ),
        "verified_on": Param(None, type=["null", "string"], format="date", title="When"),
        "details": Param(
            None,
            type=["null", "string"],
            maxLength=2000,
            pattern=_TEXT,
            title="The request, in their words",
        ),
        "related_request_id": Param(
            None,
            type=["null", "string"],
            pattern=UUID_PATTERN,
            title="Related request (restriction only)",
        ),
        "corrections": Param(
            None,
            type=["null", "object"],
            additionalProperties={
                "type": "object",
                "additionalProperties": {"type": ["string", "null"], "maxLength": 500},
            },
            title="Corrections (rectification only)",
        ),
    },
    default_args={
        "owner": "privacy-engineering",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
    },
    tags=["lethe", "subject-requests"],
):
    # The identities, who verified, the details and the corrections are read from the
    # run's params when the task runs (fields named by the operator), not rendered as
    # template fields.
    RegisterSubjectRequestOperator(
        task_id="register_request",
        right="{{ params.right }}",
        verification_method="{{ params.verification_method }}",
        verified_on="{{ params.verified_on }}",
        related_request_id="{{ params.related_request_id }}",
    )
