"""The subject export: collect one subject's data from every store into a ZIP and hand it over.

:class:`SubjectExportOperator` answers an access or portability request. It collects the
subject's data from every store the policies name (streaming, through the store
adapters), writes the package (:mod:`lethe.export.package`: a plain ZIP, not itself
encrypted), uploads it to the private export bucket with server-side encryption (encrypted
at rest by the bucket), records a presigned, expiring link on the request and the proof of
delivery in the audit ledger, and returns counts and the object key only.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from lethe.connections import CONTROL_DB, OBJECT_STORE
from lethe.control.ledger import AuditEntry
from lethe.exceptions import LetheError
from lethe.export import EXPORT_BUCKET
from lethe.operators.links import RequestPageLink
from lethe.operators.retention import as_bool
from lethe.policy.vocabulary import EXPORT_RIGHTS

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook
    from lethe.policy.models import Category
    from lethe.policy.vocabulary import Identity

#: A presigned S3 link (signature version 4) is valid for at most seven days.
MAX_LINK_DAYS = 7


def portable_categories(categories, right: str) -> tuple[list[Category], list[Category]]:
    """Split the categories a right covers into (collected here, referred to the client).

    Access covers every category granting access; portability only those processed on
    consent or to perform a contract (the rights the policies derive). Categories whose
    controller is the client are referred to it unless it instructed the provider to act.
    """
    covered = [c for c in categories if c.has_right(right)]
    included, referred = [], []
    for category in covered:
        acts = category.controller.value == "provider" or (
            category.client_instruction is not None
            and right in {r.value for r in category.client_instruction.act_on}
        )
        (included if acts else referred).append(category)
    return included, referred


class SubjectExportOperator(BaseOperator):
    """Collect one subject's data from every store and deliver it as a ZIP, stored with
    server-side encryption behind an expiring link.

    Either ``request_id`` (a request in the control schema, e.g. from the subject_requests
    DAG) or the identities typed into the form (registered here as a new request, which
    records this run so a retry answers the same request) names the subject. The
    identities are read from the run's params when the task runs, never through template
    fields (Airflow stores those rendered in its metadata database).

    :param request_id: the subject request to answer. (templated)
    :param identity_fields: identity type -> the param (form field) holding its values;
        by default those of :data:`lethe.operators.wiring.IDENTITY_TEMPLATES`. (templated)
    :param right: ``access`` or ``portability`` (taken from the request when given).
        (templated)
    :param file_format: ``json`` or ``csv``. (templated)
    :param include_recordings: copy call recordings as audio files. (templated)
    :param link_expiry_days: how long the download link works (1-7). (templated)
    :param export_conn_id: connection of the object store. (templated)
    :param export_bucket: the private export bucket. (templated)
    :param control_conn_id: connection of the control schema. (templated)
    :param policy_dir: directory of the policy files. (templated)
    """

    template_fields = (
        "request_id",
        "identity_fields",
        "right",
        "file_format",
        "include_recordings",
        "link_expiry_days",
        "export_conn_id",
        "export_bucket",
        "control_conn_id",
        "policy_dir",
    )
    ui_color = "#d6e4f4"
    # The request's page on the Privacy page: the presigned link stays off the task view.
    operator_extra_links = (RequestPageLink(),)

    def __init__(
        self,
        *,
        request_id: str | None = None,
        identity_fields: dict[str, str] | None = None,
        right: str | None = "access",
        file_format: str = "json",
        include_recordings: bool | str = True,
        link_expiry_days: int | str = MAX_LINK_DAYS,
        export_conn_id: str = OBJECT_STORE,
        export_bucket: str = EXPORT_BUCKET,
        control_conn_id: str = CONTROL_DB,
        policy_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id
        self.identity_fields = identity_fields
        self.right = right
        self.file_format = file_format
        self.include_recordings = include_recordings
        self.link_expiry_days = link_expiry_days
        self.export_conn_id = export_conn_id
        self.export_bucket = export_bucket
        self.control_conn_id = control_conn_id
        self.policy_dir = policy_dir

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def _s3(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        # Signature version 4: presigned links carry their expiry (at most seven days).
        return S3Hook(aws_conn_id=self.export_conn_id, config={"signature_version": "s3v4"})

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            return self._answer(context)
        finally:
            self.hook.close()

    def _answer(self, context: Context) -> dict[str, Any]:
        from lethe.domain.identities import InvalidIdentity

        days = self._link_days()
        include_files = as_bool(self.include_recordings, "include_recordings")
        if self.file_format not in ("json", "csv"):
            raise AirflowFailException("file_format must be json or csv")
        from lethe.operators.request_steps import refuse_malformed, settle_failure

        control = self.hook
        try:
            request_id, right, identities = self._subject(context)
        except InvalidIdentity as exc:
            if self.request_id:  # a stored request: refused as on every route
                raise refuse_malformed(control, context, str(self.request_id), exc) from None
            raise AirflowFailException(str(exc)) from None
        except LetheError as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("Export for request %s (%s)", request_id, right)
        try:
            return self._export(context, request_id, right, identities, days, include_files)
        except Exception as exc:
            # A store or the bucket briefly unreachable: Airflow tries again and the
            # request stays in_progress; the last try, or an error that cannot pass,
            # fails the request with the reason.
            failed = settle_failure(
                control, context, request_id, action="export", exc=exc, retries=self.retries
            )
            if failed is None:
                raise
            raise failed from exc

    def _link_days(self) -> int:
        try:
            days = int(self.link_expiry_days)
        except (TypeError, ValueError):
            raise AirflowFailException("link_expiry_days must be a whole number") from None
        if not 1 <= days <= MAX_LINK_DAYS:
            raise AirflowFailException(f"link_expiry_days must be 1 to {MAX_LINK_DAYS}")
        return days

    def _subject(self, context: Context) -> tuple[str, str, dict[Identity, frozenset[str]]]:
        """(request id, right, identities) of the subject to export."""
        from lethe.domain.identities import InvalidIdentity, normalise_all
        from lethe.intake import form_identities, identity_fields
        from lethe.operators.wiring import IDENTITY_TEMPLATES

        control = self.hook
        fields = dict(self.identity_fields or identity_fields(IDENTITY_TEMPLATES))
        ti = context["ti"]
        if self.request_id:
            try:
                given = bool(form_identities(context["params"], fields))
            except InvalidIdentity:
                given = True  # given, and redacted since: still not both
            if given:
                raise AirflowFailException("give a request id or identities, not both")
            request = control.load_request(str(self.request_id))
            if request.right not in EXPORT_RIGHTS:
                raise AirflowFailException(
                    f"request {request.request_id} is a {request.right} request, not access or "
                    "portability"
                )
            return request.request_id, request.right, request.identities
        # A retry of this run answers the request its first try registered (found by the
        # run, not by the form: the form's values may be redacted by now).
        earlier = control.find_intake_request(ti.dag_id, ti.run_id)
        if earlier:
            request = control.load_request(earlier[0])
            return request.request_id, request.right, request.identities
        if self.right not in EXPORT_RIGHTS:
            raise AirflowFailException("right must be access or portability")
        given = form_identities(context["params"], fields)
        request_id = control.register_request(
            right=str(self.right),
            identities=given,
            source="subject_export_form",
            status="in_progress",
            verified_by=f"airflow:{ti.dag_id}",
            verification_method="identity verified by the person who triggered the export",
            intake=(ti.dag_id, ti.run_id),
        )
        return request_id, str(self.right), normalise_all(given)

    def _export(
        self,
        context: Context,
        request_id: str,
        right: str,
        identities: dict[Identity, frozenset[str]],
        days: int,
        include_files: bool,
    ) -> dict[str, Any]:
        from lethe.export.package import ExportPackage
        from lethe.export.summary import render_summary
        from lethe.policy import load_catalog
        from lethe.stores import adapter_for
        from lethe.subjects.actions import refer
        from lethe.subjects.resolution import resolve

        control = self.hook
        catalog = load_catalog(self.policy_dir)
        included, referred = portable_categories(catalog.categories(), right)
        resolution = resolve(identities, catalog.categories())
        generated = datetime.now(UTC).replace(microsecond=0)
        workdir = Path(tempfile.mkdtemp(prefix="lethe-export-"))
        package = ExportPackage(workdir, fmt=self.file_format)
        withheld = 0
        try:
            for category in included:
                package.include(category)
                protection = control.protection(category)
                for store in category.stores:
                    adapter = adapter_for(store, category)
                    with adapter.session():
                        result = adapter.collect(
                            resolution.subject, protection, package, include_files=include_files
                        )
                    withheld += result.withheld
            header = {
                "request_id": request_id,
                "right": right,
                "format": self.file_format,
                "generated_at": generated.isoformat(),
                "policy_fingerprint": catalog.fingerprint,
                # Only the families the package draws on: naming others would say more
                # than the answer needs (and a lawful-intercept family nothing at all).
                "policy_versions": {
                    f.family.value: f.version
                    for f in catalog.families
                    if any(c in included for c in f.categories)
                },
            }
            counts = package.counts()
            summary = render_summary(
                header=header,
                included=included,
                counts=counts,
                columns=package.column_descriptions(),
                referred=referred,
                file_format=self.file_format,
            )
            archive = workdir / f"{request_id}.zip"
            sha256 = package.finish(archive, header=header, summary=summary)
            key = f"exports/{generated:%Y/%m/%d}/{request_id}.zip"
            link, expires_at = self._deliver(archive, key, days)
        finally:
            package.cleanup()

        control.record_handover(
            request_id,
            key=key,
            sha256=sha256,
            link=link,
            expires_at=expires_at,
            file_format=self.file_format,
        )
        for category in referred:
            refer(control, request_id, category, resolution)
        _complete(control, request_id, right, resolution.types_used, sha256, expires_at)
        totals = {
            "categories": len(included),
            "referred": len(referred),
            "rows": sum(c["rows"] for c in counts.values()),
            "files": sum(c["files"] for c in counts.values()),
            "withheld": withheld,
        }
        location = urlunsplit(urlsplit(link)._replace(query="", fragment=""))
        control.record(
            AuditEntry.for_task(
                context["ti"],
                action="export",
                outcome="ok",
                request_id=request_id,
                counts=totals,
                details={
                    "right": right,
                    "format": self.file_format,
                    "bucket": self.export_bucket,
                    "key": key,
                    "sha256": sha256,
                    "link_location": location,
                    "link_sha256": hashlib.sha256(link.encode()).hexdigest(),
                    "expires_at": expires_at.isoformat(),
                    "rows_per_category": {cid: c["rows"] for cid, c in counts.items()},
                    "referred_categories": [c.id for c in referred],
                    "identity_types_used": resolution.types_used,
                    "resolved_identity_types": list(resolution.resolved_types),
                },
            )
        )
        self.log.info(
            "Export %s delivered: %d categories, %d rows, %d files; link expires %s",
            request_id,
            totals["categories"],
            totals["rows"],
            totals["files"],
            expires_at.isoformat(),
        )
        return {
            "request_id": request_id,
            "key": key,
            "expires_at": expires_at.isoformat(),
            **totals,
        }

    def _deliver(self, archive: Path, key: str, days: int) -> tuple[str, datetime]:
        """Upload ``archive`` encrypted at rest; return a presigned link and its expiry.

        The expiry is read from the signed link itself (its signing time plus its
        lifetime), so what is recorded is what S3 enforces.
        """
        hook = self._s3()
        hook.load_file(
            filename=str(archive),
            key=key,
            bucket_name=self.export_bucket,
            replace=True,
            encrypt=True,
        )
        head = hook.get_conn().head_object(Bucket=self.export_bucket, Key=key)
        if head.get("ServerSideEncryption") not in ("AES256", "aws:kms"):
            raise AirflowFailException(
                f"the export bucket {self.export_bucket} did not encrypt the export at rest"
            )
        link = hook.generate_presigned_url(
            client_method="get_object",
            params={"Bucket": self.export_bucket, "Key": key},
            expires_in=days * 86400,
        )
        if not link:
            raise AirflowFailException("the object store signed no download link")
        return link, link_expiry(link)


def link_expiry(link: str) -> datetime:
    """When a presigned (signature version 4) link stops working: X-Amz-Date + X-Amz-Expires.

    :raises AirflowFailException: the link carries no signing time or lifetime.
    """
    query = parse_qs(urlsplit(link).query)
    try:
        (signed,) = query["X-Amz-Date"]
        (lifetime,) = query["X-Amz-Expires"]
        moment = datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return moment + timedelta(seconds=int(lifetime))
    except (KeyError, ValueError):
        raise AirflowFailException(
            "the download link carries no signature-version-4 expiry"
        ) from None


def _complete(
    control: PrivacyControlHook,
    request_id: str,
    right: str,
    types_used: list[str],
    sha256: str,
    expires: datetime,
) -> None:
    """Complete the request the export answered (a rerun of a completed one changes nothing
    but the handover it already recorded)."""
    if control.load_request(request_id).status != "in_progress":
        return
    control.transition(
        request_id,
        to="completed",
        reason="export delivered",
        answer={
            "right": right,
            "identity_types_used": types_used,
            "export": {"sha256": sha256, "expires_at": expires.isoformat()},
        },
        identity_types_used=types_used,
    )
