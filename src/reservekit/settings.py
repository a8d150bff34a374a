"""One settings object, read from the environment once at start-up."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path

import msgspec

from reservekit.detectors.config import DetectorThresholds

DEFAULT_PLANS: dict[str, int] = {"free": 60, "pro": 600, "enterprise": 6000}


class SettingsError(ValueError):
    """A configuration value cannot be used; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path(".reservekit")
    database_url: str = ""
    redis_url: str | None = None
    key_pepper: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    # Browser origins allowed to call the management routes (keys, accounts, audit) cross-origin.
    cors_allowed_origins: tuple[str, ...] = ()
    plans: dict[str, int] = msgspec.field(default_factory=lambda: dict(DEFAULT_PLANS))
    log_level: str = "INFO"
    log_json: bool = True
    # One JSON line per request (web/request_log.py); off when a proxy in front already logs requests.
    access_log: bool = True
    poll_interval_seconds: float = 1.0
    key_cache_size: int = 100_000
    # How often each replica compares its in-memory key view with the log, and how many keys per check.
    key_view_check_interval_seconds: float = 30.0
    key_view_check_sample: int = 256
    failed_auth_per_ip_per_minute: int = 30
    max_body_bytes: int = 64 * 1024
    # Projections (usage, detectors, outboxes) and webhook deliveries in the serving process (the embedded
    # default); false when `reservekit worker` runs them in a process of its own (docs/operations.md).
    run_worker: bool = True
    # Benchmarks only: serve GET /bench/v1/services for this account with no authentication at all.
    bench_unauthenticated_account: str | None = None
    detectors: DetectorThresholds = msgspec.field(default_factory=DetectorThresholds)
    # Webhooks (docs/webhooks.md). Loopback (and plain http to it) only for local development.
    webhooks_allow_loopback: bool = False
    webhooks_timeout_seconds: float = 10.0
    webhooks_backoff_base_seconds: float = 5.0
    webhooks_backoff_max_seconds: float = 3600.0
    webhooks_give_up_after_seconds: float = 3 * 86_400.0
    webhooks_failing_after_errors: int = 5
    webhooks_disable_after_seconds: float = 86_400.0
    # The dashboard (docs/dashboard.md): who may sign up, how long sessions live, sign-in attempt limits.
    signup_open: bool = True
    secure_cookies: bool = False
    session_idle_minutes: int = 60
    session_max_hours: int = 12
    sign_in_attempts_per_ip_per_minute: int = 20
    sign_in_attempts_per_email_per_minute: int = 5
    # Team invitations are also mailed when an SMTP host is set (docs/dashboard.md); else only shown.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "reservekit@localhost"
    smtp_starttls: bool = True
    # Usage rows older than this many whole days are dropped (docs/operations.md, "Usage retention").
    usage_retention_days: int = 90

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'reservekit.db').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.trusted_proxies)


def _parse_plans(raw: str) -> dict[str, int]:
    plans = dict(DEFAULT_PLANS)
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise SettingsError(f"RESERVEKIT_PLANS: expected name=requests_per_minute, got {item!r}")
        plans[name.strip()] = int(value)
    return plans


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _parse_number(name: str, raw: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name}: must be positive, got {raw!r}")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``RESERVEKIT_*`` variables; unknown plans or bad values fail loudly."""
    env = os.environ if environ is None else environ
    fields: dict[str, object] = {}
    if "RESERVEKIT_DATA_DIR" in env:
        fields["data_dir"] = Path(env["RESERVEKIT_DATA_DIR"])
    if env.get("RESERVEKIT_DATABASE_URL"):
        fields["database_url"] = _normalise_database_url(env["RESERVEKIT_DATABASE_URL"])
    if env.get("RESERVEKIT_REDIS_URL"):
        fields["redis_url"] = env["RESERVEKIT_REDIS_URL"]
    if env.get("RESERVEKIT_KEY_PEPPER"):
        fields["key_pepper"] = env["RESERVEKIT_KEY_PEPPER"]
    if env.get("RESERVEKIT_TRUSTED_PROXIES"):
        proxies = tuple(p.strip() for p in env["RESERVEKIT_TRUSTED_PROXIES"].split(",") if p.strip())
        for cidr in proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise SettingsError(f"RESERVEKIT_TRUSTED_PROXIES: {cidr!r} is not an IP or CIDR") from None
        fields["trusted_proxies"] = proxies
    if env.get("RESERVEKIT_CORS_ALLOWED_ORIGINS"):
        origins = tuple(o.strip() for o in env["RESERVEKIT_CORS_ALLOWED_ORIGINS"].split(",") if o.strip())
        for origin in origins:
            if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
                raise SettingsError(
                    f"RESERVEKIT_CORS_ALLOWED_ORIGINS: {origin!r} is not an origin like https://app.example.com"
                )
        fields["cors_allowed_origins"] = origins
    if env.get("RESERVEKIT_BENCH_UNAUTHENTICATED_ACCOUNT"):
        fields["bench_unauthenticated_account"] = env["RESERVEKIT_BENCH_UNAUTHENTICATED_ACCOUNT"]
    if env.get("RESERVEKIT_PLANS"):
        fields["plans"] = _parse_plans(env["RESERVEKIT_PLANS"])
    if env.get("RESERVEKIT_DETECTORS"):
        try:
            fields["detectors"] = msgspec.json.decode(env["RESERVEKIT_DETECTORS"], type=DetectorThresholds)
        except msgspec.DecodeError as exc:
            raise SettingsError(f"RESERVEKIT_DETECTORS: {exc}") from None
    if env.get("RESERVEKIT_SIGNUP"):
        signup = env["RESERVEKIT_SIGNUP"].strip().lower()
        if signup not in {"open", "closed"}:
            raise SettingsError(
                f"RESERVEKIT_SIGNUP: expected open or closed, got {env['RESERVEKIT_SIGNUP']!r}"
            )
        fields["signup_open"] = signup == "open"
    if env.get("RESERVEKIT_SECURE_COOKIES"):
        fields["secure_cookies"] = _parse_bool("RESERVEKIT_SECURE_COOKIES", env["RESERVEKIT_SECURE_COOKIES"])
    for var, name in (
        ("RESERVEKIT_SMTP_HOST", "smtp_host"),
        ("RESERVEKIT_SMTP_USERNAME", "smtp_username"),
        ("RESERVEKIT_SMTP_PASSWORD", "smtp_password"),
        ("RESERVEKIT_SMTP_FROM", "smtp_from"),
    ):
        if env.get(var):
            fields[name] = env[var].strip()
    if env.get("RESERVEKIT_SMTP_STARTTLS"):
        fields["smtp_starttls"] = _parse_bool("RESERVEKIT_SMTP_STARTTLS", env["RESERVEKIT_SMTP_STARTTLS"])
    if env.get("RESERVEKIT_LOG_LEVEL"):
        fields["log_level"] = env["RESERVEKIT_LOG_LEVEL"].upper()
    if env.get("RESERVEKIT_WEBHOOKS_ALLOW_LOOPBACK"):
        fields["webhooks_allow_loopback"] = _parse_bool(
            "RESERVEKIT_WEBHOOKS_ALLOW_LOOPBACK", env["RESERVEKIT_WEBHOOKS_ALLOW_LOOPBACK"]
        )
    if env.get("RESERVEKIT_RUN_WORKER"):
        fields["run_worker"] = _parse_bool("RESERVEKIT_RUN_WORKER", env["RESERVEKIT_RUN_WORKER"])
    if env.get("RESERVEKIT_LOG_JSON"):
        fields["log_json"] = _parse_bool("RESERVEKIT_LOG_JSON", env["RESERVEKIT_LOG_JSON"])
    if env.get("RESERVEKIT_ACCESS_LOG"):
        fields["access_log"] = _parse_bool("RESERVEKIT_ACCESS_LOG", env["RESERVEKIT_ACCESS_LOG"])
    numeric: dict[str, tuple[str, type[int] | type[float]]] = {
        "RESERVEKIT_POLL_INTERVAL_SECONDS": ("poll_interval_seconds", float),
        "RESERVEKIT_KEY_CACHE_SIZE": ("key_cache_size", int),
        "RESERVEKIT_KEY_VIEW_CHECK_INTERVAL_SECONDS": ("key_view_check_interval_seconds", float),
        "RESERVEKIT_KEY_VIEW_CHECK_SAMPLE": ("key_view_check_sample", int),
        "RESERVEKIT_FAILED_AUTH_PER_IP_PER_MINUTE": ("failed_auth_per_ip_per_minute", int),
        "RESERVEKIT_MAX_BODY_BYTES": ("max_body_bytes", int),
        "RESERVEKIT_WEBHOOKS_TIMEOUT_SECONDS": ("webhooks_timeout_seconds", float),
        "RESERVEKIT_WEBHOOKS_BACKOFF_BASE_SECONDS": ("webhooks_backoff_base_seconds", float),
        "RESERVEKIT_WEBHOOKS_BACKOFF_MAX_SECONDS": ("webhooks_backoff_max_seconds", float),
        "RESERVEKIT_WEBHOOKS_GIVE_UP_AFTER_SECONDS": ("webhooks_give_up_after_seconds", float),
        "RESERVEKIT_WEBHOOKS_FAILING_AFTER_ERRORS": ("webhooks_failing_after_errors", int),
        "RESERVEKIT_WEBHOOKS_DISABLE_AFTER_SECONDS": ("webhooks_disable_after_seconds", float),
        "RESERVEKIT_SESSION_IDLE_MINUTES": ("session_idle_minutes", int),
        "RESERVEKIT_SMTP_PORT": ("smtp_port", int),
        "RESERVEKIT_SESSION_MAX_HOURS": ("session_max_hours", int),
        "RESERVEKIT_SIGN_IN_ATTEMPTS_PER_IP_PER_MINUTE": ("sign_in_attempts_per_ip_per_minute", int),
        "RESERVEKIT_SIGN_IN_ATTEMPTS_PER_EMAIL_PER_MINUTE": ("sign_in_attempts_per_email_per_minute", int),
        "RESERVEKIT_USAGE_RETENTION_DAYS": ("usage_retention_days", int),
    }
    for var, (field, kind) in numeric.items():
        if env.get(var):
            fields[field] = _parse_number(var, env[var], kind)
    return msgspec.convert(fields, Settings, strict=False)


def _normalise_database_url(url: str) -> str:
    """Accept the URLs operators paste (postgres://, postgresql://) and pick the async drivers."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise SettingsError(f"RESERVEKIT_DATABASE_URL: unsupported scheme in {url.split('://')[0]!r}")
