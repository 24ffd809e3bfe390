"""Let the privacy staff's roles read the Privacy page (``python privacy_access.py``).

The page asks the auth manager ``is_authorized_custom_view(method="GET", resource_name=
"Lethe Privacy")`` (:mod:`lethe.ui.auth`). The FAB auth manager answers from its own
permission tables: only a role holding ``can_read`` on the resource ``Lethe Privacy`` may
read it, and FAB creates no such resource, so without this step every user, admins
included, gets 403. This creates the permission and grants it to :data:`READER_ROLES`,
creating the dedicated role :data:`PRIVACY_ROLE` when it is missing. Grants already there
are left as they are, and so are other roles' grants (made in *Security* > *Roles* or with
``airflow roles add-perms``), so running it again changes nothing. FAB's own role sync at
the api-server's start only adds permissions, so the grants survive restarts.

Under another auth manager there is nothing to grant (SimpleAuthManager lets every user
with a role read the page): the step says so and succeeds. Prints one line per role.
"""

from __future__ import annotations

import sys

#: Who may read the page. Its request pages carry an export's download link (the subject's
#: data): Admin and Op reach that data anyway (they manage the stores' connections);
#: Viewer, User and Public do not, and get no grant.
READER_ROLES = ("Admin", "Op", "Privacy")
#: The role for privacy staff who need no other Airflow right (alone or with Viewer).
PRIVACY_ROLE = "Privacy"
#: FAB's action for the method the page asks about (GET).
ACTION = "can_read"
#: The UI lists plugins to build its navigation, the *Privacy* entry included; Op and
#: Admin hold this permission already.
PLUGINS_RESOURCE = "Plugins"


def wanted() -> dict[str, list[str]]:
    """Role -> the resources it must hold :data:`ACTION` on."""
    from lethe.ui.auth import RESOURCE_NAME

    return {
        name: [RESOURCE_NAME, PLUGINS_RESOURCE] if name == PRIVACY_ROLE else [RESOURCE_NAME]
        for name in READER_ROLES
    }


def grant(security_manager) -> dict[str, list[str]]:
    """Grant the page to :data:`READER_ROLES`; return role -> the resources newly granted
    (empty lists when everything was there)."""
    sm = security_manager
    added: dict[str, list[str]] = {}
    for name, resources in wanted().items():
        role = sm.add_role(name)  # the existing role when there is one
        added[name] = []
        for resource in resources:
            permission = sm.create_permission(ACTION, resource)  # the resource too, if missing
            if permission not in role.permissions:
                sm.add_permission_to_role(role, permission)
                added[name].append(resource)
    return added


def missing(security_manager) -> list[tuple[str, str]]:
    """The (role, resource) grants the database does not hold, read anew: FAB's
    ``add_permission_to_role`` logs a failed write instead of raising."""
    sm = security_manager
    sm.session.expire_all()
    held = {
        (role.name, permission.resource.name)
        for role in sm.get_all_roles()
        for permission in role.permissions
        if permission.action.name == ACTION
    }
    return [
        (name, resource)
        for name, resources in wanted().items()
        for resource in resources
        if (name, resource) not in held
    ]


def uses_fab() -> bool:
    """Whether Airflow is configured with the FAB auth manager (or a subclass of it)."""
    from airflow.api_fastapi.app import get_auth_manager_cls
    from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

    return issubclass(get_auth_manager_cls(), FabAuthManager)


def main() -> int:
    """Grant the page; return the exit status."""
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    @providers_configuration_loaded  # FAB's options ([fab] ...) as its own CLI reads them
    def run() -> int:
        if not uses_fab():
            print("not the FAB auth manager: no permission to grant")
            return 0
        from airflow.providers.fab.auth_manager.cli_commands.utils import (
            get_application_builder,
        )

        with get_application_builder() as appbuilder:
            added = grant(appbuilder.sm)
            absent = missing(appbuilder.sm)
        for role, resources in added.items():
            state = f"granted {', '.join(resources)}" if resources else "already granted"
            print(f"{role}: {state}")
        for role, resource in absent:
            print(f"{role}: {ACTION} on {resource} was not stored", file=sys.stderr)
        return 1 if absent else 0

    return run()


if __name__ == "__main__":
    sys.exit(main())
