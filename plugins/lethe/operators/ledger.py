"""The daily check of the audit ledger, and the anchoring of its head outside the table."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from lethe.connections import CONTROL_DB, LEDGER_KEY, OBJECT_STORE
from lethe.export import EXPORT_BUCKET

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook


class PrivacyLedgerVerifyOperator(BaseOperator):
    """Verify the audit ledger, then publish its head.

    Checks ids, the unkeyed and the keyed chain and every head published so far
    (:meth:`PrivacyControlHook.check_ledger`); a broken ledger fails the task without
    retries, naming the first broken entry. Then writes the newest entry's id, hash and
    HMAC to ``s3://<bucket>/ledger-heads/YYYY/MM/DD.json`` for the run's logical date
    (UTC), only if that object is absent, and to the task log.

    :param control_conn_id: connection of the privacy control schema. (templated)
    :param ledger_key_conn_id: connection whose password is the ledger key. (templated)
    :param aws_conn_id: connection of the bucket the heads go to. (templated)
    :param bucket: the bucket of the heads (the private export bucket). (templated)
    """

    template_fields = ("control_conn_id", "ledger_key_conn_id", "aws_conn_id", "bucket")
    ui_color = "#e8e0f4"

    def __init__(
        self,
        *,
        control_conn_id: str = CONTROL_DB,
        ledger_key_conn_id: str = LEDGER_KEY,
        aws_conn_id: str = OBJECT_STORE,
        bucket: str = EXPORT_BUCKET,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.control_conn_id = control_conn_id
        self.ledger_key_conn_id = ledger_key_conn_id
        self.aws_conn_id = aws_conn_id
        self.bucket = bucket

    @cached_property
    def hook(self) -> PrivacyControlHook:
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(
            control_conn_id=self.control_conn_id, ledger_key_conn_id=self.ledger_key_conn_id
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from lethe.control import ledger_heads
        from lethe.control.ledger_chain import LedgerKeyError

        client = S3Hook(aws_conn_id=self.aws_conn_id).get_conn()
        try:
            heads = ledger_heads.published(client, self.bucket)
            result = self.hook.check_ledger(heads)
        except LedgerKeyError as e:
            raise AirflowFailException(str(e)) from e
        finally:
            self.hook.close()
        if not result.ok:
            raise AirflowFailException(result.summary())
        self.log.info("%s", result.summary())
        outcome: dict[str, Any] = {
            "entries": result.entries,
            "heads_checked": result.heads_checked,
            "head_entry": None,
            "published": None,
        }
        if result.head is None:
            self.log.info("The ledger is empty: no head to publish")
            return outcome
        moment = context.get("logical_date") or context["dag_run"].run_after
        day = moment.astimezone(UTC).date()
        head = result.head
        self.log.info(
            "Ledger head: entry %d, hash %s, HMAC %s",
            head.entry_id,
            head.entry_hash,
            head.entry_hmac,
        )
        written = ledger_heads.publish(
            client,
            self.bucket,
            day,
            head,
            published_at=datetime.now(UTC).isoformat(timespec="seconds"),
            dag_id=context["dag_run"].dag_id,
            run_id=context["dag_run"].run_id,
        )
        key = ledger_heads.head_key(day)
        if written:
            self.log.info("Published the head to s3://%s/%s", self.bucket, key)
        else:
            self.log.info("s3://%s/%s was already published: left as it is", self.bucket, key)
        outcome.update(head_entry=head.entry_id, published=key if written else None)
        return outcome
