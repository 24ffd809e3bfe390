"""Store adapters: one per store kind, over the official provider hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lethe.policy.models import Category
    from lethe.stores.base import StoreAdapter


def adapter_for(store: Any, category: Category, **options: Any) -> StoreAdapter:
    """The retention adapter of ``store``, over its provider hook (created, not connected).

    :param options: adapter options, e.g. ``batch_size`` for PostgreSQL.
    """
    if store.kind == "postgres":
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from lethe.stores.postgres import PostgresRetentionAdapter

        hook = PostgresHook(postgres_conn_id=store.conn_id)
        return PostgresRetentionAdapter(hook=hook, store=store, category=category, **options)
    if store.kind == "sftp":
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        from lethe.stores.sftp import SFTPRetentionAdapter

        hook = SFTPHook(ssh_conn_id=store.conn_id)
        return SFTPRetentionAdapter(hook=hook, store=store, category=category, **options)
    if store.kind == "s3":
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from lethe.stores.s3 import S3RetentionAdapter

        hook = S3Hook(aws_conn_id=store.conn_id)
        return S3RetentionAdapter(hook=hook, store=store, category=category, **options)
    raise ValueError(f"no adapter for store kind {store.kind!r}")
