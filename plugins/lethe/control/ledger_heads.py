"""Published heads of the audit ledger: the newest entry's id, hash and HMAC, outside the table.

The ``verify_ledger`` task of the ``ledger_verification`` DAG writes one object a day,
``ledger-heads/YYYY/MM/DD.json`` in the export bucket, only if it is absent (S3
``If-None-Match: *``): a head once published is never overwritten by Lethe. Verification
reads every version of every head (on a versioned bucket an overwrite leaves the first
version behind) and checks that the ledger still holds each entry with the same hash and
HMAC: truncating the newest entries, or rehashing them, is then detected.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lethe.control.ledger_chain import Head
from lethe.exceptions import ControlSchemaError

if TYPE_CHECKING:
    from datetime import date

#: Where heads live in the bucket.
PREFIX = "ledger-heads/"


def head_key(day: date) -> str:
    """The object key of the head published for ``day``."""
    return f"{PREFIX}{day:%Y/%m/%d}.json"


def publish(client: Any, bucket: str, day: date, head: Head, **about: Any) -> bool:
    """Write ``head`` as the head of ``day`` unless that day's head exists.

    :param client: a boto3 S3 client.
    :param about: what else to write down (run id, time); ids only.
    :return: whether it was written now (False: the day's head was already published).
    """
    from botocore.exceptions import ClientError

    body = json.dumps({**head.as_json(), **about}, sort_keys=True, default=str).encode()
    try:
        client.put_object(
            Bucket=bucket,
            Key=head_key(day),
            Body=body,
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}:
            return False
        raise
    return True


def published(client: Any, bucket: str) -> list[Head]:
    """Every version of every head in ``bucket``, oldest key first.

    :raises ControlSchemaError: a head object is not a head.
    """
    heads: list[Head] = []
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=PREFIX):
        for version in page.get("Versions", []):
            key, version_id = version["Key"], version.get("VersionId")
            params = {"Bucket": bucket, "Key": key}
            if version_id and version_id != "null":
                params["VersionId"] = version_id
            body = client.get_object(**params)["Body"].read()
            try:
                data = json.loads(body)
                heads.append(
                    Head(
                        entry_id=int(data["entry_id"]),
                        entry_hash=str(data["entry_hash"]),
                        entry_hmac=data.get("entry_hmac"),
                        source=f"s3://{bucket}/{key}",
                    )
                )
            except (ValueError, KeyError, TypeError) as e:
                raise ControlSchemaError(f"s3://{bucket}/{key} is not a ledger head") from e
    return sorted(heads, key=lambda head: head.source)
