"""What no retry fixes: a task fails for good on it (:func:`not_retried`)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from lethe.exceptions import PolicyError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def not_retried() -> Iterator[None]:
    """Fail a task without retries on what no retry fixes: a policy that does not load
    (:class:`PolicyError`) and an Airflow connection that is not defined (also when a store
    adapter wrapped the lookup's error in a :class:`StoreError`).

    Both become ``AirflowFailException`` (the original error chained). Used as a decorator
    on an operator's ``execute``; a store that is briefly unreachable is still retried.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

    try:
        yield
    except (PolicyError, AirflowNotFoundException) as exc:
        raise AirflowFailException(str(exc)) from exc
    except StoreError as exc:
        if not _caused_by(exc, AirflowNotFoundException):
            raise
        raise AirflowFailException(str(exc)) from exc


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is in ``error``'s chain of causes (``raise ... from None`` too)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
