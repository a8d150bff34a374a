"""The composition root: builds every adapter once from Settings and starts/stops the background tasks.

Like cosmicpython's ``bootstrap``, this is the only place that knows which adapter fills which port:
the command handlers get a ``HandlerDependencies``, the web layer a ``WebServices``, and neither sees
the ``Runtime`` itself.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

import projections
from reservekit.audit.flags import flag_lookup
from reservekit.auth.authenticator import Authenticator
from reservekit.auth.key_view import KeyView
from reservekit.auth.key_view_follower import KeyViewChecker, KeyViewTailer
from reservekit.background import PostgresListener, WakeUp
from reservekit.clock import HOUR_US, MINUTE_US, Clock, SystemClock
from reservekit.db import close_readers, create_engine
from reservekit.events.store import NOTIFY_CHANNEL, SqlEventStore
from reservekit.keys.tokens import KeyHasher, load_or_create_pepper, parse_pepper
from reservekit.lifecycle_log import log_lifecycle
from reservekit.members.directory import SqlMemberDirectory
from reservekit.members.housekeeping import DashboardHousekeeping
from reservekit.members.passwords import Argon2Passwords
from reservekit.metrics import Metrics
from reservekit.migrate import upgrade_to_head_async
from reservekit.projecting.runner import ProjectionRunner
from reservekit.ratelimit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter
from reservekit.ratelimit.breaker import CircuitBreakerLimiter
from reservekit.settings import Settings, SettingsError
from reservekit.usage.retention import UsageMaintenance
from reservekit.usage.spool import UsageSpool
from reservekit.usage.writer import UsageWriter
from reservekit.usecases.application import Application
from reservekit.usecases.dependencies import HandlerDependencies
from reservekit.webhooks.dispatcher import DispatchConfig, Dispatcher
from reservekit.webhooks.endpoints import Webhooks
from reservekit.webhooks.secrets import SecretBox

log = structlog.get_logger(__name__)
USAGE_SPOOL_DIR = "usage-spool"


def load_pepper(settings: Settings) -> bytes:
    """Production supplies the pepper; only the embedded default may generate one into its data dir."""
    if settings.key_pepper:
        try:
            return parse_pepper(settings.key_pepper)
        except ValueError as exc:
            raise SettingsError(f"RESERVEKIT_KEY_PEPPER: {exc}") from None
    if not settings.is_embedded:
        raise SettingsError(
            "RESERVEKIT_KEY_PEPPER must be set when RESERVEKIT_DATABASE_URL is not the embedded SQLite"
        )
    return load_or_create_pepper(settings.data_dir)


def build_rate_limiter(settings: Settings) -> RateLimiter:
    if not settings.redis_url:
        return InMemoryRateLimiter()
    from redis.asyncio import Redis

    # Short timeouts and no retries: this is on every request, and an outage degrades to local limits.
    client = Redis.from_url(
        settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25, retry_on_timeout=False
    )
    # A hung Redis must not cost every request its timeout: after a few failures, local limits at once.
    return CircuitBreakerLimiter(RedisRateLimiter(client))


def dispatch_config(settings: Settings) -> DispatchConfig:
    return DispatchConfig(
        timeout_seconds=settings.webhooks_timeout_seconds,
        backoff_base_seconds=settings.webhooks_backoff_base_seconds,
        backoff_max_seconds=settings.webhooks_backoff_max_seconds,
        give_up_after_seconds=settings.webhooks_give_up_after_seconds,
        failing_after_errors=settings.webhooks_failing_after_errors,
        disable_after_seconds=settings.webhooks_disable_after_seconds,
    )


class Runtime:
    """Everything one replica runs. A plain class: Litestar injects it without validating its fields."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        store: SqlEventStore,
        application: Application,
        wakeup: WakeUp,
        key_view: KeyView,
        runner: ProjectionRunner,
        clock: Clock,
        authenticator: Authenticator,
        usage: UsageWriter,
        pepper: bytes,
    ) -> None:
        self.settings = settings
        self.pepper = pepper
        self.engine = engine
        self.store = store
        self.application = application
        self.wakeup = wakeup
        self.key_view = key_view
        self.runner = runner
        self.clock = clock
        self.authenticator = authenticator
        self.usage = usage
        self.key_view_checker = KeyViewChecker(key_view, sample=settings.key_view_check_sample)
        self.metrics = Metrics(usage, key_view, self.key_view_checker)
        self.metrics.watch_wakeup_link(wakeup)
        self.webhooks = Webhooks(
            store,
            SecretBox(pepper),
            allow_loopback=settings.webhooks_allow_loopback,
            give_up_after_seconds=settings.webhooks_give_up_after_seconds,
            read_models=runner,
            failing_after_errors=settings.webhooks_failing_after_errors,
            nudge=lambda: self.dispatcher.nudge(),
        )
        self.dispatcher = Dispatcher(
            engine,
            self.webhooks,
            dispatch_config(settings),
            wakeup,
            poll_interval=settings.poll_interval_seconds,
            observer=self.metrics,
        )
        runner.on_applied.append(self.dispatcher.nudge)
        self._background: list[
            KeyViewTailer
            | ProjectionRunner
            | PostgresListener
            | UsageWriter
            | Dispatcher
            | UsageMaintenance
            | DashboardHousekeeping
        ] = []
        self.members: SqlMemberDirectory | None = None
        self.rate_limiter: RateLimiter | None = None

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        engine = create_engine(settings.effective_database_url)
        store = SqlEventStore(engine, clock)
        wakeup = WakeUp()
        key_view = KeyView(engine, capacity=settings.key_cache_size)
        # The writing replica applies its own events at once: a revocation holds for the very next request.
        store.on_append(key_view.apply_own)
        store.on_append(wakeup.notify)
        store.on_append(log_lifecycle)
        pepper = load_pepper(settings)
        hasher = KeyHasher(pepper)

        async def key_id_for_hash(key_hash: str) -> str | None:
            key = key_view.get(key_hash) or await key_view.resolve(key_hash)
            return key.key_id if key is not None else None

        members = SqlMemberDirectory(
            engine,
            clock,
            idle_us=settings.session_idle_minutes * MINUTE_US,
            lifetime_us=settings.session_max_hours * HOUR_US,
        )
        sign_in_limiter = build_rate_limiter(settings)

        async def sign_in_gate(bucket: str) -> bool:
            per_minute = (
                settings.sign_in_attempts_per_ip_per_minute
                if bucket.startswith("ip:")
                else settings.sign_in_attempts_per_email_per_minute
            )
            decision = await sign_in_limiter.hit(
                f"sign-in:{bucket}", limit=per_minute, period=60.0, now=clock.timestamp()
            )
            return decision.allowed

        runner = ProjectionRunner(
            engine,
            projections.build_all(settings),
            wakeup,
            poll_interval=settings.poll_interval_seconds,
            clock=clock,
        )
        store.on_append(runner.recent.remember)
        application = Application(
            HandlerDependencies(
                store=store,
                hasher=hasher,
                clock=clock,
                plans=settings.plans,
                key_id_for_hash=key_id_for_hash,
                flag_for=flag_lookup(engine),
                members=members,
                passwords=Argon2Passwords(),
                sign_in_gate=sign_in_gate,
            ),
            read_models=runner,
        )
        rate_limiter = build_rate_limiter(settings)
        authenticator = Authenticator(
            key_view,
            hasher,
            clock,
            plans=settings.plans,
            account_limiter=rate_limiter,
            failures_per_ip_per_minute=settings.failed_auth_per_ip_per_minute,
        )
        usage = UsageWriter(
            engine, clock, on_written=wakeup.notify, spool=UsageSpool(settings.data_dir / USAGE_SPOOL_DIR)
        )
        runtime = cls(
            settings, engine, store, application, wakeup, key_view, runner, clock, authenticator, usage,
            pepper,
        )  # fmt: skip
        runtime.rate_limiter = rate_limiter
        runtime.members = members
        return runtime

    async def start(
        self,
        *,
        migrate: bool = False,
        background: bool = True,
        serve: bool = True,
        work: bool | None = None,
        catch_up: bool = True,
    ) -> None:
        """Start this replica's loops: ``serve`` those a request-serving process needs (usage writer,
        key-view tailer), ``work`` the worker's (projection runner, webhook dispatcher, usage
        partitions and retention; default ``settings.run_worker``). ``reservekit worker`` starts with
        ``serve=False, work=True``. ``catch_up=False``: leave the projections where they are
        (``projections rebuild`` replays into fresh tables anyway; catching the live ones up first cost
        it minutes on a long log)."""
        work = self.settings.run_worker if work is None else work
        if migrate:
            await upgrade_to_head_async(self.settings.effective_database_url)
        await self.runner.setup()
        if serve:
            await self.usage.replay_spool()  # rows a killed process answered but never wrote
        if catch_up:
            # Without the worker here, only the lifecycle projections this process's reads need; the
            # worker catches the usage projections up (possibly many rows) in its own process.
            await self.runner.run_all_once(source=None if work else "events")
        await self.key_view.start()
        if not background:
            return
        if work:
            # Before serving: fan out what is pending, and on first start (or new detector thresholds)
            # take the flags already present as the baseline, so no flag raised from now on is missed.
            await self.dispatcher.materialise_all()
        if serve:
            tailer = KeyViewTailer(
                self.key_view,
                self.wakeup,
                poll_interval=self.settings.poll_interval_seconds,
                checker=self.key_view_checker,
                check_interval=self.settings.key_view_check_interval_seconds,
            )
            self._background += [self.usage, tailer]
        if work:
            maintenance = UsageMaintenance(
                self.engine, self.store, self.clock, days=self.settings.usage_retention_days
            )
            self._background += [self.runner, self.dispatcher, maintenance]
            if self.members is not None:
                self._background.append(DashboardHousekeeping(self.members))
        if not self.settings.is_embedded:
            self._background.append(
                PostgresListener(self.settings.effective_database_url, NOTIFY_CHANNEL, self.wakeup)
            )
        for task in self._background:
            task.start()

    async def refresh_projections(self) -> None:
        """Catch every projection up now (tests and one-shot commands; writes wait by themselves)."""
        await self.runner.run_all_once()

    async def stop(self) -> None:
        for task in reversed(self._background):
            await task.stop()
        self._background = []
        if isinstance(self.rate_limiter, CircuitBreakerLimiter):
            await self.rate_limiter.close()
        close_readers(self.engine)
        await self.engine.dispose()
