"""Every setting of the synthspot service, declared once, typed, with its default.

Values come from (highest priority first): ``SYNTHSPOT_<NAME>`` environment variables, the
TOML file named by ``SYNTHSPOT_CONFIG``, then the defaults below. Nested and list values are
JSON in the environment (``SYNTHSPOT_S3_ALLOWED_BUCKETS='["uploads"]'``). An unknown
``SYNTHSPOT_*`` variable or config key is an error, so a typo never silently falls back to a
default. docs/configuration.md is generated from this module (``python -m
synthspot.worker.settings``).

With no configuration at all, everything is embedded: a file-system broker, a local folder
standing in for the bucket, verdicts appended to a JSON-lines file. Production sets
``redis_url`` (broker, verdict store, delivery outbox), ``storage=s3`` and the ``s3_*`` options.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from synthspot.detector.errors import SynthspotError

ENV_PREFIX = "SYNTHSPOT_"
CONFIG_ENV = "SYNTHSPOT_CONFIG"
LABELS = ("synthetic", "review", "real", "error")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME")
    return (Path(base) if base else Path.home() / ".local" / "state") / "synthspot"


class IntegrationConfig(BaseModel):
    """One destination for verdicts (a platform webhook, a Slack channel, a plugin)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="unique name, used in tasks and metrics")
    type: str = Field(description="integration type: 'webhook', 'slack' or a plugin's entry-point name")
    labels: list[Literal["synthetic", "review", "real", "error"]] = Field(
        default_factory=lambda: list(LABELS), description="verdict labels routed to this integration")
    url: SecretStr | None = Field(default=None, description="endpoint URL (a secret for Slack)")
    secrets: list[SecretStr] = Field(default_factory=list,
                                     description="signing secrets (whsec_...); two during a rotation, newest first")
    timeout_s: float = Field(default=15.0, gt=0, le=60)
    enabled: bool = True


class Settings(BaseSettings):
    """synthspot's configuration (see the module docstring for where values come from)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True,
                                      env_nested_delimiter=None, case_sensitive=False)

    # --- state and brokers -------------------------------------------------------------------
    state_dir: Path = Field(default_factory=default_state_dir,
                            description="embedded mode's folder: file broker, local bucket, verdicts file")
    redis_url: SecretStr | None = Field(
        default=None, description="redis:// or rediss:// URL (password inside) of the verdict store and outbox; "
                                  "unset = embedded mode")
    broker_url: SecretStr | None = Field(
        default=None, description="Celery broker; default: redis_url when set, else a file-system broker in state_dir")
    redis_tls_ca_file: Path | None = Field(default=None, description="CA bundle for rediss:// connections")
    queue: str = Field(default="synthspot.score", description="the Celery queue of image checks")
    visibility_timeout_s: int = Field(
        default=3600, ge=5, description="seconds before an unacknowledged check is redelivered; must exceed the "
                                         "longest check including retries' waits")
    reconcile_after_s: int = Field(
        default=3900, ge=5, description="a submitted check still without a verdict this long after submission "
                                        "(or its last re-send) is sent again; must exceed visibility_timeout_s")
    reconcile_interval_s: float = Field(default=30.0, gt=0, description="how often workers look for such checks")
    verdict_ttl_s: int = Field(default=30 * 86400, ge=60, description="how long verdicts (and dedupe) are kept")

    # --- the worker --------------------------------------------------------------------------
    batch_size: int = Field(default=16, ge=1, le=1024, description="images scored per forward pass at most")
    batch_wait_ms: int = Field(default=25, ge=0, le=10_000,
                               description="how long a partial batch waits for more images before it runs")
    concurrency: int | None = Field(default=None, ge=1, description="checks in flight per worker process "
                                                                     "(fetch + decode threads); default 2 x batch_size")
    soft_shutdown_timeout_s: float = Field(default=60.0, ge=0,
                                           description="on SIGTERM, time given to running checks before they are "
                                                       "requeued")
    task_max_retries: int = Field(default=30, ge=0, description="retries of a check on transient failures")
    retry_backoff_max_s: int = Field(default=300, ge=1, description="cap of the exponential retry delay")
    metrics_port: int = Field(default=9808, ge=0, le=65535, description="port of /metrics, /livez, /readyz (0: off)")
    metrics_host: str = Field(default="0.0.0.0", description="address the metrics server binds")
    log_format: Literal["json", "text"] = Field(default="json", description="structured JSON logs or plain text")
    log_level: str = Field(default="INFO")

    # --- the detector --------------------------------------------------------------------------
    weights: str | None = Field(default=None, description="weights name, path or URL (default: shipped model). "
                                                          "The paper's weights are CC BY-NC-SA 4.0 (non-commercial)")
    weights_mirror: str | None = Field(default=None, description="base URL replacing the official weights host")
    cache_dir: Path | None = Field(default=None, description="weights cache (default ~/.cache/synthspot)")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N")
    compile: bool = Field(default=False, description="torch.compile the model at start (faster inference "
                                                     "after a one-time compile; needs a C++ compiler on CPU)")
    policy: Literal["tiles", "center", "full"] | None = Field(default=None, description="scoring policy "
                                                                                          "(default: the weights')")
    threshold: float | None = Field(default=None, ge=0, le=1,
                                    description="score at or above which the label is synthetic (default: weights')")
    review_threshold: float | None = Field(default=None, ge=0, le=1,
                                           description="score at or above which the label is review (default: "
                                                       "the weights' own, else half the synthetic threshold)")
    max_image_bytes: int = Field(default=50 * 1024 * 1024, ge=1, description="objects larger than this are refused")
    max_image_pixels: int = Field(default=64_000_000, ge=1, description="decompression-bomb cap (width x height)")
    min_image_side: int = Field(default=16, ge=1, description="images with a shorter side are refused")

    # --- object storage ------------------------------------------------------------------------
    storage: Literal["local", "s3"] = Field(default="local",
                                            description="'local': a folder stands in for the bucket; 's3': boto3")
    local_bucket_dir: Path | None = Field(default=None, description="root of the local buckets "
                                                                    "(default state_dir/buckets): s3://B/K = ROOT/B/K")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (default: AWS)")
    s3_region: str | None = Field(default=None)
    s3_access_key_id: SecretStr | None = Field(default=None, description="default: boto3's credential chain")
    s3_secret_access_key: SecretStr | None = Field(default=None)
    s3_allowed_buckets: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                          description="buckets checks may read; empty = any (set it in production)")
    s3_max_attempts: int = Field(default=5, ge=1, description="boto3 standard-mode retry attempts")
    s3_connect_timeout_s: float = Field(default=5.0, gt=0)
    s3_read_timeout_s: float = Field(default=30.0, gt=0)

    # --- verdict delivery ------------------------------------------------------------------------
    verdicts_file: Path | None = Field(default=None, description="embedded mode's verdict store "
                                                                 "(default state_dir/verdicts.jsonl)")
    integrations: list[IntegrationConfig] = Field(default_factory=list,
                                                  description="destinations for verdicts (JSON list)")
    retry_schedule_s: list[float] = Field(
        default_factory=lambda: [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
        description="delivery attempt delays (Standard Webhooks schedule); jittered")
    delivery_concurrency: int = Field(default=8, ge=1, description="deliveries in flight per deliverer")
    delivery_lease_s: int = Field(default=120, ge=5, description="a claimed delivery returns to the outbox "
                                                                 "if its deliverer dies for this long")
    deliver_metrics_port: int = Field(default=9809, ge=0, le=65535, description="metrics port of `synthspot deliver`")

    @field_validator("s3_allowed_buckets", mode="before")
    @classmethod
    def _split_buckets(cls, value: Any) -> Any:
        """Comma-separated or a JSON list."""
        if isinstance(value, str):
            if value.strip().startswith("["):
                import json

                return json.loads(value)
            return [b.strip() for b in value.split(",") if b.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        names = [i.name for i in self.integrations]
        if len(names) != len(set(names)):
            raise ValueError(f"integration names must be unique: {names}")
        if self.reconcile_after_s <= self.visibility_timeout_s:
            raise ValueError("reconcile_after_s must exceed visibility_timeout_s")
        if self.review_threshold is not None and self.threshold is not None and self.review_threshold > self.threshold:
            raise ValueError("review_threshold must not exceed threshold")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get(CONFIG_ENV)
        if config:
            if not Path(config).is_file():
                raise ValueError(f"{CONFIG_ENV}={config}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    # --- derived values (never stored twice) ----------------------------------------------------
    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    def effective_broker_url(self) -> str:
        if self.broker_url is not None:
            return self.broker_url.get_secret_value()
        if self.redis_url is not None:
            return self.redis_url.get_secret_value()
        return "filesystem://localhost/"

    @property
    def broker_dir(self) -> Path:
        return self.state_dir / "broker"

    @property
    def bucket_root(self) -> Path:
        return self.local_bucket_dir or self.state_dir / "buckets"

    @property
    def verdicts_path(self) -> Path:
        return self.verdicts_file or self.state_dir / "verdicts.jsonl"

    @property
    def worker_concurrency(self) -> int:
        return self.concurrency or 2 * self.batch_size


def unknown_env(environ: dict[str, str] | None = None) -> list[str]:
    """``SYNTHSPOT_*`` variables that name no setting (typos)."""
    environ = dict(os.environ if environ is None else environ)
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_ENV}
    return sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


class SettingsError(SynthspotError, ValueError):
    """Invalid configuration. The message names fields and problems, never values (secrets)."""

    reason = "bad_settings"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; unknown ``SYNTHSPOT_*`` variables are an error."""
    typos = unknown_env()
    if typos:
        raise SettingsError(f"unknown synthspot settings in the environment: {', '.join(typos)} "
                            f"(see docs/configuration.md)")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(settings)'}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False)[:5])
        raise SettingsError(f"invalid settings: {problems}") from None


def render_markdown() -> str:
    """docs/configuration.md: one row per setting, from the declarations above."""
    lines = ["# Configuration", "",
             "Generated from `worker/settings.py` by `python -m synthspot.worker.settings`; do not edit by hand.", "",
             __doc__.strip().split("\n\n", 1)[1], "",
             "| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = {"state_dir": "~/.local/state/synthspot"}.get(name) or repr(field.default_factory())
        else:
            default = repr(field.default)
        ann = field.annotation
        typ = ann.__name__ if isinstance(ann, type) else str(ann)
        for noise in ("typing.", "pathlib.", "pydantic.types.", "synthspot.worker.settings.", "__main__."):
            typ = typ.replace(noise, "")
        typ = typ.replace("|", "or")
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {typ} | `{default}` | {field.description or ''} |")
    lines += ["", "Each entry of `SYNTHSPOT_INTEGRATIONS` is an object with these keys:", "",
              "| key | meaning |", "|---|---|"]
    for name, field in IntegrationConfig.model_fields.items():
        lines.append(f"| `{name}` | {field.description or ''} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
