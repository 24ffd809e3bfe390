"""The export task's extra link: the request's page on the Privacy page, never the
presigned download link (which every UI user could otherwise see)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TIKeyProtocol

#: Where the plugin mounts the Privacy page's app in the api-server.
URL_PREFIX = "/lethe"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def request_page_url(request_id: str, base_url: str | None = None) -> str:
    """The URL of a request's page: under ``[api] base_url`` when set, else from the root."""
    if base_url is None:
        from airflow.sdk.configuration import conf

        base_url = conf.get("api", "base_url", fallback="") or ""
    return f"{base_url.rstrip('/')}{URL_PREFIX}/requests/{request_id}"


class RequestPageLink(BaseOperatorLink):
    """*Subject request*: the export's request on the Privacy page (authenticated).

    The request id comes from the task's result, else from its (rendered) ``request_id``;
    a task that ran no request gets no link.
    """

    name = "Subject request"

    def get_link(self, operator: BaseOperator, *, ti_key: TIKeyProtocol) -> str:
        from airflow.sdk.bases.xcom import BaseXCom

        result: Any = BaseXCom.get_value(ti_key=ti_key, key="return_value")
        request_id = result.get("request_id") if isinstance(result, dict) else None
        request_id = request_id or getattr(operator, "request_id", None)
        if not isinstance(request_id, str) or not _UUID.match(request_id):
            return ""
        return request_page_url(request_id.lower())
