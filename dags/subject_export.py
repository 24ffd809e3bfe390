"""
### Subject export: access and portability, on demand

Collects one data subject's data from every store the policies name (PostgreSQL tables,
call recordings on SFTP, analytics exports in S3) into one ZIP and hands it over.

**Trigger form:** a *request id* (a request registered in the control schema, for example
by `subject_requests`) **or** the subject's *e-mail addresses*, *phone numbers* and/or
*customer ids* (then a request is registered for the export); the *right* (`access`:
everything the subject may know about; `portability`: only data processed on consent or
to perform the contract); the *format* (`json` or `csv`, zipped either way); whether to
include *recordings* as audio files; how many days the *link* works (1-7).

**What the subject gets:** one JSON or CSV file per category with plain-language column
descriptions, the recordings, a `manifest.json` with the SHA-256 of every file, and a
`README.md` summary with, per category, the purpose, legal basis, retention and
recipients as the privacy statement gives them. Lawful-intercept data and data under a
legal hold never appear, and the package does not reveal that they exist. Categories the
customer organisation controls are named and referred to it.

**Delivery:** the ZIP itself is not encrypted (no password): it is uploaded to the
private bucket `lethe-exports`, which stores it with server-side encryption, and handed
over through a presigned HTTPS link that expires; link, checksum and expiry (read from the
signed link) are recorded on the request, and the proof of delivery in the audit ledger.
The XCom holds counts, the object key and the expiry only. Exports are purged after 30
days by `retention_subject_exports`.

**What stays in Airflow:** identities typed into this form are stored on the request
only and redacted from the run's conf when it ends (the `lethe` plugin); see
`docs/subject-requests.md`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from lethe.operators.export import MAX_LINK_DAYS, SubjectExportOperator
from lethe.operators.wiring import UUID_PATTERN, identity_params
from lethe.policy.vocabulary import EXPORT_RIGHTS

with DAG(
    dag_id="subject_export",
    description="Export a subject's data (access or portability) as a ZIP with a time-limited "
    "download link",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    doc_md=__doc__,
    params={
        "request_id": Param(
            None,
            type=["null", "string"],
            pattern=UUID_PATTERN,
            title="Request id",
            description="A registered subject request (access or portability). Leave empty "
            "to give the subject's identities below instead.",
        ),
        **identity_params(),
        "right": Param(
            "access",
            type="string",
            enum=list(EXPORT_RIGHTS),
            title="Right",
            description="access: everything the subject may know about; portability: data "
            "processed on consent or to perform the contract.",
        ),
        "format": Param("json", type="string", enum=["json", "csv"], title="File format"),
        "include_recordings": Param(
            True, type="boolean", title="Include recordings", description="As audio files."
        ),
        "link_expiry_days": Param(
            MAX_LINK_DAYS,
            type="integer",
            minimum=1,
            maximum=MAX_LINK_DAYS,
            title="Link valid for (days)",
        ),
    },
    render_template_as_native_obj=True,
    default_args={
        "owner": "privacy-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
    },
    tags=["lethe", "subject-requests", "export"],
):
    SubjectExportOperator(
        task_id="export_subject_data",
        request_id="{{ params.request_id }}",
        # The identities are read from the run's params when the task runs, not rendered.
        right="{{ params.right }}",
        file_format="{{ params.format }}",
        include_recordings="{{ params.include_recordings }}",
        link_expiry_days="{{ params.link_expiry_days }}",
    )
