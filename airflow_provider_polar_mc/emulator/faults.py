"""Fault injection for reliability tests: make a share of requests fail the way networks and servers do.

Configured from ``POLAR_MC_EMULATOR_FAULTS`` (``rate=0.05,kinds=5xx+timeout+drop,seed=7,paths=/tunnel``)
or at run time through ``POST /_emulator/faults`` with the same settings as JSON. Kinds:

- ``500`` / ``503`` (``5xx`` means either): an error response, before the request is processed;
- ``timeout``: stall ``delay`` seconds, then process and answer (the client should have given up);
- ``drop``: close the connection without any response, before the request is processed.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass

KINDS = ("500", "503", "5xx", "timeout", "drop")

ENV_VAR = "POLAR_MC_EMULATOR_FAULTS"


class FaultConfigError(ValueError):
    """Fault settings that cannot be understood."""


@dataclass(frozen=True)
class FaultConfig:
    rate: float = 0.0  # probability that a matching request gets a fault
    kinds: tuple[str, ...] = ("5xx",)
    seed: int | None = None  # for reproducible fault sequences
    paths: tuple[str, ...] = ()  # request path prefixes (as sent, e.g. "/tunnel"); empty: every path
    methods: tuple[str, ...] = ()  # HTTP methods; empty: every method
    delay: float = 30.0  # seconds a "timeout" fault stalls before answering
    limit: int | None = None  # inject at most this many faults

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise FaultConfigError(f"fault rate must be within [0, 1], got {self.rate}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise FaultConfigError(f"unknown fault kind(s) {unknown or '(none)'}; use {'+'.join(KINDS)}")
        if self.delay < 0:
            raise FaultConfigError("fault delay must not be negative")
        if self.limit is not None and self.limit < 0:
            raise FaultConfigError("fault limit must not be negative")

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.limit != 0

    @classmethod
    def parse(cls, text: str) -> FaultConfig:
        """Parse ``key=value`` pairs separated by commas; list values are separated by ``+``."""
        values: dict[str, object] = {}
        for item in filter(None, (p.strip() for p in (text or "").split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise FaultConfigError(f"malformed fault setting {item!r}: expected key=value")
            values[key.strip()] = value.strip()
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> FaultConfig:
        """Build from parsed settings or JSON (lists may be given as lists or ``+``-joined strings)."""
        known = {"rate", "kinds", "seed", "paths", "methods", "delay", "limit"}
        unknown = set(values) - known
        if unknown:
            raise FaultConfigError(f"unknown fault setting(s) {sorted(unknown)}; known: {sorted(known)}")

        def as_list(v: object) -> tuple[str, ...]:
            items = v.split("+") if isinstance(v, str) else list(v)  # type: ignore[call-overload]
            return tuple(str(i).strip() for i in items if str(i).strip())

        kw: dict[str, object] = {}
        try:
            if "rate" in values:
                kw["rate"] = float(values["rate"])  # type: ignore[arg-type]
            if "delay" in values:
                kw["delay"] = float(values["delay"])  # type: ignore[arg-type]
            if values.get("seed") not in (None, ""):
                kw["seed"] = int(values["seed"])  # type: ignore[arg-type]
            if values.get("limit") not in (None, ""):
                kw["limit"] = int(values["limit"])  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise FaultConfigError(f"invalid fault setting: {exc}") from None
        if "kinds" in values:
            kw["kinds"] = tuple(k.lower() for k in as_list(values["kinds"]))
        if "paths" in values:
            kw["paths"] = as_list(values["paths"])
        if "methods" in values:
            kw["methods"] = tuple(m.upper() for m in as_list(values["methods"]))
        return cls(**kw)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        for k in ("kinds", "paths", "methods"):
            d[k] = list(d[k])
        return d


@dataclass(frozen=True)
class Fault:
    kind: str  # "500", "503", "timeout" or "drop"
    delay: float = 0.0


class FaultInjector:
    """Decides, per request, whether to inject a fault. Thread-safe."""

    def __init__(self, config: FaultConfig | None = None):
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self._config = config
            self._random = random.Random(config.seed)
            self._injected = 0

    def clear(self) -> None:
        self.configure(FaultConfig())

    @property
    def config(self) -> FaultConfig:
        return self._config

    @property
    def injected(self) -> int:
        """How many faults were injected since the last configuration."""
        return self._injected

    def pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            cfg = self._config
            if not cfg.enabled:
                return None
            if cfg.limit is not None and self._injected >= cfg.limit:
                return None
            if cfg.paths and not any(path.startswith(p) for p in cfg.paths):
                return None
            if cfg.methods and method.upper() not in cfg.methods:
                return None
            if self._random.random() >= cfg.rate:
                return None
            kind = self._random.choice(cfg.kinds)
            if kind == "5xx":
                kind = self._random.choice(("500", "503"))
            self._injected += 1
            return Fault(kind, cfg.delay if kind == "timeout" else 0.0)
