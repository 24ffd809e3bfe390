"""Who may see the Privacy page: a user Airflow's own auth manager authenticated.

FastAPI apps of plugins are not protected by the api-server: every route of
:mod:`lethe.ui.app` depends on :func:`privacy_viewer`, which reads the caller's JWT the
way Airflow's core routes do (``Authorization: Bearer`` header, else the UI's ``_token``
cookie; :func:`airflow.api_fastapi.core_api.security.get_user`) and asks the auth manager
whether the user may see a custom view named :data:`RESOURCE_NAME`.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status

#: The custom view the auth manager is asked about.
RESOURCE_NAME = "Lethe Privacy"


async def privacy_viewer(request: Request) -> Any:
    """The authenticated user allowed to read the Privacy page.

    :raises HTTPException: 401 without a valid token, 403 when the token is invalid or the
        user may not see the page.
    """
    # Imported here: the plugin module is loaded by every Airflow process, tasks included.
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    user = await get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_custom_view(
        method="GET", resource_name=RESOURCE_NAME, user=user
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed to see the Privacy page")
    return user
