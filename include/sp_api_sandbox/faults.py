"""Seeded fault injection: the sandbox fails like a busy SP-API does, repeatably.

Each operation's n-th call draws from its own ``random.Random(f"{seed}:{operation}:{n}")``, so the
same call sequence meets the same faults whatever other operations do in between.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Literal

FaultKind = Literal["drop", "error500", "error503", "throttle", "slow", "page_token"]
FAULT_KINDS: tuple[FaultKind, ...] = ("drop", "error500", "error503", "throttle", "slow", "page_token")


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per call, and the range of an injected delay in seconds."""

    drop: float = 0.0
    error500: float = 0.0
    error503: float = 0.0
    throttle: float = 0.0
    slow: float = 0.0
    page_token: float = 0.0
    slow_min: float = 0.0
    slow_max: float = 0.0

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            value = getattr(self, kind)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {kind}={value} must be within [0, 1]")
        if sum(getattr(self, kind) for kind in FAULT_KINDS if kind not in ("slow", "page_token")) > 1.0:
            raise ValueError("drop + error500 + error503 + throttle must not exceed 1")
        if not 0.0 <= self.slow_min <= self.slow_max:
            raise ValueError("need 0 <= slow_min <= slow_max")


#: flaky: a few percent of each, delays well under a client's timeout; hostile: much more, some > 5 s.
PROFILES: dict[str, FaultRates] = {
    "none": FaultRates(),
    "flaky": FaultRates(
        drop=0.01,
        error500=0.02,
        error503=0.02,
        throttle=0.02,
        slow=0.03,
        page_token=0.01,
        slow_min=0.2,
        slow_max=1.5,
    ),
    "hostile": FaultRates(
        drop=0.05,
        error500=0.08,
        error503=0.08,
        throttle=0.10,
        slow=0.10,
        page_token=0.05,
        slow_min=0.5,
        slow_max=7.0,
    ),
}


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one call: ``outcome`` replaces the response (or None), ``delay`` comes first."""

    outcome: FaultKind | None = None
    delay: float = 0.0
    invalidate_page_token: bool = False

    @property
    def injected(self) -> bool:
        return self.outcome is not None or self.delay > 0 or self.invalidate_page_token


@dataclass
class FaultInjector:
    """Decides faults per (operation, call index) from a seed and a profile."""

    seed: int
    profile: str = "none"
    rates: FaultRates = field(default_factory=FaultRates)
    _counters: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_profile(cls, seed: int, profile: str) -> FaultInjector:
        if profile not in PROFILES:
            raise ValueError(f"unknown fault profile {profile!r}; choose one of {sorted(PROFILES)}")
        return cls(seed=seed, profile=profile, rates=PROFILES[profile])

    def describe(self) -> dict[str, object]:
        return {"profile": self.profile, **asdict(self.rates)}

    def decide(self, operation: str) -> FaultDecision:
        """The fault (if any) for the next call of ``operation``."""
        with self._lock:
            n = self._counters.get(operation, 0)
            self._counters[operation] = n + 1
        rates = self.rates
        if self.profile == "none" and rates == PROFILES["none"]:
            return FaultDecision()
        rng = random.Random(f"{self.seed}:{operation}:{n}")
        roll = rng.random()
        outcome: FaultKind | None = None
        edge = 0.0
        for kind in ("drop", "error500", "error503", "throttle"):
            edge += getattr(rates, kind)
            if roll < edge:
                outcome = kind
                break
        delay = rng.uniform(rates.slow_min, rates.slow_max) if rng.random() < rates.slow else 0.0
        invalidate = rng.random() < rates.page_token
        return FaultDecision(outcome=outcome, delay=delay, invalidate_page_token=invalidate)


def parse_faults(value: str | dict[str, object], seed: int) -> FaultInjector:
    """A profile name, or ``{"profile": name, **rate overrides}`` as accepted by /_sandbox/config."""
    if isinstance(value, str):
        return FaultInjector.from_profile(seed, value)
    if not isinstance(value, dict):
        raise ValueError("faults must be a profile name or an object")
    overrides = dict(value)
    profile = str(overrides.pop("profile", "none"))
    if profile not in PROFILES:
        raise ValueError(f"unknown fault profile {profile!r}; choose one of {sorted(PROFILES)}")
    unknown = set(overrides) - set(FaultRates.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown fault settings: {sorted(unknown)}")
    base = asdict(PROFILES[profile])
    base.update({k: float(v) for k, v in overrides.items()})  # type: ignore[arg-type]
    return FaultInjector(
        seed=seed, profile=profile if not overrides else f"{profile}+custom", rates=FaultRates(**base)
    )
