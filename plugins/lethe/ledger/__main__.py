"""``python -m lethe.ledger verify``: is the audit ledger whole, unchanged and in order?

Recomputes the database's unkeyed chain and the keyed (HMAC) chain over every entry, and
checks that every head ever published to ``s3://<bucket>/ledger-heads/`` (every version) is
still in the ledger with the same hash and HMAC. Exit code 0: everything holds; 1: the
ledger is broken (the first broken entry id is printed, never an entry's content); 2: it
cannot be checked (no ledger key, a database or bucket out of reach). Airflow's home is
the checkout's ``.lethe/airflow`` unless ``AIRFLOW_HOME`` is set.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lethe import checkout
from lethe.connections import CONTROL_DB, LEDGER_KEY, OBJECT_STORE
from lethe.export import EXPORT_BUCKET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lethe.ledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="verify both chains and every published head")
    verify.add_argument("--conn-id", default=CONTROL_DB, help="control database connection")
    verify.add_argument("--key-conn-id", default=LEDGER_KEY, help="ledger key connection")
    verify.add_argument("--s3-conn-id", default=OBJECT_STORE, help="connection of the heads")
    verify.add_argument("--bucket", default=EXPORT_BUCKET, help="bucket of the heads")
    verify.add_argument(
        "--no-heads", action="store_true", help="skip the published heads (no S3 at hand)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    checkout.use_local_airflow_home()  # before Airflow is imported

    from lethe.control import ledger_heads
    from lethe.control.hook import PrivacyControlHook
    from lethe.exceptions import LetheError

    hook = PrivacyControlHook(control_conn_id=args.conn_id, ledger_key_conn_id=args.key_conn_id)
    try:
        heads = []
        if not args.no_heads:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            client = S3Hook(aws_conn_id=args.s3_conn_id).get_conn()
            heads = ledger_heads.published(client, args.bucket)
        result = hook.check_ledger(heads)
    except LetheError as exc:
        print(f"error: cannot verify the ledger: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a server out of reach: exit 2, not 1 ("broken")
        print(f"error: cannot verify the ledger: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        hook.close()
    if not result.ok:
        print(f"error: {result.summary()}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


# Airflow's plugin loader may import files under plugins/ as top-level modules (named
# "__main__" for this one): run only when started with -m.
if __name__ == "__main__" and __spec__ is not None and __spec__.name == "lethe.ledger.__main__":
    sys.exit(main())
