"""The base of the package's operators: one hook per task process, and one way to pace rate-limit waits.

Like the amazon provider's ``AwsBaseOperator``, an operator names its hook class and builds the hook
from standard parameters; it never builds clients itself. Rate-limit waits go through
:mod:`selling_partner.pacing` (go, wait here, defer, stop), and a deferral resumes in ``method_name``
in a new process, so everything an operator needs after a deferral must be in its checkpoint.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.sdk import BaseOperator

from selling_partner.pacing import DEFAULT_DEFER_AFTER, DEFAULT_MIN_DEFERRAL, Pace, decide, inline_limit

if TYPE_CHECKING:
    from airflow.sdk import Context

    from selling_partner.hooks.sp_api import SellingPartnerHook

#: A deferral lasts this much longer than the wait, so the token is there when the task resumes.
DEFER_MARGIN_SECONDS = 0.5


class SellingPartnerBaseOperator(BaseOperator):
    """Base for operators that call SP-API through a :class:`SellingPartnerHook` subclass.

    :param sp_api_conn_id: the seller's ``amazon_sp_api`` connection
    :param defer_after_seconds: rate-limit waits up to this are waited out in the worker; longer ones
        defer the task (no worker slot held)
    :param min_deferral_seconds: the shortest deferral; shorter waits are waited out in the worker
    """

    hook_class: ClassVar[type[SellingPartnerHook]]

    def __init__(
        self,
        *,
        sp_api_conn_id: str = "sp_api_default",
        defer_after_seconds: float | str = DEFAULT_DEFER_AFTER,
        min_deferral_seconds: float | str = DEFAULT_MIN_DEFERRAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sp_api_conn_id = sp_api_conn_id
        self.defer_after_seconds = float(defer_after_seconds)
        self.min_deferral_seconds = float(min_deferral_seconds)

    @cached_property
    def hook(self) -> Any:
        """The task process's hook; waits up to the inline limit happen inside its calls."""
        return self.hook_class(
            self.sp_api_conn_id, max_wait=inline_limit(self.defer_after_seconds, self.min_deferral_seconds)
        )

    def close_hook(self) -> None:
        """Close the hook's session and limiter connection (at the end of every execute/resume)."""
        hook = self.__dict__.pop("hook", None)
        if hook is not None:
            hook.close()
        self._stats_seen: dict[str, int] = {}

    def absorb_stats(self, run: dict[str, Any]) -> None:
        """Add what the hook sent since the last call to ``run``'s counters (they outlive the process)."""
        hook = self.__dict__.get("hook")
        if hook is None:
            return
        totals = hook.stats.totals()
        seen = self.__dict__.get("_stats_seen", {})
        for name, value in totals.items():
            run[name] = int(run.get(name, 0)) + value - seen.get(name, 0)
        self._stats_seen = dict(totals)

    def pace(self, wait: float, *, budget_left: float | None = None, committed: bool = True) -> Pace:
        """What to do about a rate-limit wait (see :func:`selling_partner.pacing.decide`)."""
        return decide(
            wait,
            defer_after=self.defer_after_seconds,
            min_deferral=self.min_deferral_seconds,
            budget_left=budget_left,
            committed=committed,
        )

    def defer_for(
        self, pace: Pace, *, method_name: str = "resume", kwargs: dict[str, Any] | None = None
    ) -> NoReturn:
        """Defer on a timer for ``pace.seconds`` (the caller has saved its checkpoint); resumes in
        ``method_name`` in a new process."""
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.log.info("%s", pace.reason)
        self.close_hook()
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=pace.seconds + DEFER_MARGIN_SECONDS)),
            method_name=method_name,
            kwargs=kwargs or {},
        )


def run_id_of(context: Context | None) -> str | None:
    """The DAG run's id, or ``None`` outside a run."""
    try:
        return str(context["run_id"])  # type: ignore[index]
    except (KeyError, TypeError):
        return None


def try_number_of(context: Context | None) -> int:
    """The task instance's try number (1 outside a run)."""
    ti = context.get("ti") if context else None
    try:
        return max(1, int(getattr(ti, "try_number", 1) or 1))
    except (TypeError, ValueError):
        return 1
