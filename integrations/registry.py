"""Where verdicts go: the ``Notifier`` interface and the registry of integration types.

An integration type is a Python entry point in the group ``synthspot.integrations``; its name is
the ``type`` of an integration in the settings and its value a ``Notifier`` subclass (or any
callable taking an ``IntegrationSpec`` and returning a ``Notifier``). synthspot registers its
own ``webhook`` and ``slack`` there; a platform ships its own in a package of its own::

    # the platform's pyproject.toml
    [project.entry-points."synthspot.integrations"]
    acme = "acme_synthspot:AcmeNotifier"

and configures ``{"name": "acme-prod", "type": "acme", "url": "...", "any_extra_key": 1}``. Extra
keys of the integration's settings arrive in ``spec.options``.

A notifier makes one attempt and classifies it (``DeliveryResult``); it never sleeps, retries or
dead-letters: the deliverer (``worker/deliver.py``) owns the schedule, the outbox and metrics.
"""
from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from synthspot.worker.contract import Verdict

log = logging.getLogger(__name__)

GROUP = "synthspot.integrations"

#: delivered: the endpoint accepted it (2xx). retry: a failed attempt, try again later (non-2xx,
#: timeout, connection error). gone: the endpoint answered 410, stop sending to it. dead: a
#: failure no retry can fix (e.g. a payload the integration cannot express): dead-letter now.
Outcome = Literal["delivered", "retry", "gone", "dead"]


@dataclass(frozen=True)
class Delivery:
    """One verdict on its way to one integration (the outbox's view of it)."""

    id: str
    task_id: str
    integration: str
    attempt: int  # 1 for the first attempt
    created_at: float


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    status_code: int | None = None
    retry_after_s: float | None = None  # only honoured with outcome "retry"
    error: str | None = None  # short, safe to log: never a URL path, a secret or a response body


@dataclass(frozen=True)
class IntegrationSpec:
    """What a notifier is built from: explicit values, no settings object (``integrations`` is a library)."""

    name: str
    type: str
    url: str | None = field(default=None, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    timeout_s: float = 15.0
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)


class Notifier(ABC):
    """Delivers verdicts to one configured destination; thread-safe (the deliverer runs a pool)."""

    def __init__(self, spec: IntegrationSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    def deliver(self, verdict: "Verdict", delivery: Delivery) -> DeliveryResult:
        """Make one attempt; return how it went (raise only on a bug: the deliverer treats it as retry)."""

    def endpoint(self) -> str:
        """The destination for logs: ``scheme://host[:port]`` only, never a path that may hold a secret."""
        from .http import redact_url

        return redact_url(self.spec.url) if self.spec.url else "-"

    def fingerprint(self) -> str:
        """Changes when the destination changes (a re-enabled 410 endpoint is recognised by it)."""
        import hashlib

        return hashlib.sha256((self.spec.url or self.spec.name).encode()).hexdigest()[:16]

    def close(self) -> None:  # noqa: B027 - optional
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.spec.name!r}, endpoint={self.endpoint()!r})"


Factory = Callable[[IntegrationSpec], Notifier]

_BUILTINS = {"webhook": "synthspot.integrations.webhook:WebhookNotifier",
             "slack": "synthspot.integrations.slack:SlackNotifier"}
_lock = threading.Lock()
_cache: dict[str, str] | None = None


def available() -> dict[str, str]:
    """Integration type -> ``module:attr`` of every registered integration type.

    The built-ins are listed in pyproject.toml; they are also known here so that a checkout whose
    installed metadata predates them still works. Two distributions claiming one name is an error.
    """
    global _cache
    with _lock:
        if _cache is None:
            found: dict[str, str] = {}
            for ep in entry_points(group=GROUP):
                if ep.name in found and found[ep.name] != ep.value:
                    raise RuntimeError(f"integration type {ep.name!r} is registered twice: "
                                       f"{found[ep.name]} and {ep.value}")
                found[ep.name] = ep.value
            for name, value in _BUILTINS.items():
                if found.setdefault(name, value) != value:
                    raise RuntimeError(f"integration type {name!r} is built in; {found[name]} cannot replace it")
            _cache = found
        return dict(_cache)


def load_factory(type_name: str) -> Factory:
    """The factory of an integration type; an unknown type raises and names the known ones."""
    import importlib

    types = available()
    if type_name not in types:
        raise ValueError(f"unknown integration type {type_name!r}; registered: {', '.join(sorted(types))}")
    module, _, attr = types[type_name].partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"integration type {type_name!r} ({types[type_name]}) is not callable")
    return obj


def create(spec: IntegrationSpec) -> Notifier:
    notifier = load_factory(spec.type)(spec)
    if not isinstance(notifier, Notifier):
        raise TypeError(f"integration type {spec.type!r} built {type(notifier).__name__}, not a Notifier")
    return notifier
