"""The installation's configuration: one object built once from the environment (``Config.from_environ``), and
the catalogue of every ``GMPFLOW_*`` variable the engine, the web app and the GMP pack read (``SETTINGS``).

The composition roots build the ``Config`` once and pass it on: the CLI's commands and the worker give it to
``Gmpflow(config=...)``, ``webapp.create_app`` takes the engine's (``engine.config``). Every setting is parsed
here, once, with its default here; a value that means nothing stops the process at start with DefinitionError
``bad_setting`` naming the variable, instead of failing the first request that reads it. No other module reads
a ``GMPFLOW_*`` variable from ``os.environ`` (``tests/test_config.py``), except:

- ``engine.failpoints``: ``GMPFLOW_FAILPOINT`` is no setting of an installation but a crash test's switch,
  read at the moment a process is to die in a child process the test starts; threading it through every
  signature on the way to each failpoint would put test plumbing into the services;
- ``engine.store.db``: ``Database()`` without a URL still falls back to ``GMPFLOW_DATABASE_URL`` (the engine
  passes ``config.database_url``);
- the connectors, whose settings are their own (``connectors.hookspecs.Setting``), read from the mapping their
  registry factory is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from engine import shipped
from engine.errors import DefinitionError

CHANGE_CONTROL_MODES = ("required", "off")
DEFAULT_DATABASE_URL = "sqlite:///instance/gmpflow.db"

T = TypeVar("T")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str
    read_by: str  # the Config field (or, for the exceptions, the module) that holds it


SETTINGS = (
    Setting("GMPFLOW_DATABASE_URL", DEFAULT_DATABASE_URL, "the database (SQLAlchemy URL)", "database_url"),
    Setting("GMPFLOW_CHANGE_CONTROL", "required", "'off' activates deployments and master data directly",
            "change_control"),
    Setting("GMPFLOW_CHANGE_CONTROL_PROCESS", "change_control",
            "the process whose instances alone make versions effective", "change_control_process"),
    Setting("GMPFLOW_TOKEN_HOURS", "8", "the longest life of an API token or browser session", "token_hours"),
    Setting("GMPFLOW_LOCKOUT_ATTEMPTS", "5", "failed logins or signings that lock an account",
            "lockout_attempts"),
    Setting("GMPFLOW_JOB_LEASE_SECONDS", "300", "how long a worker holds a claimed job", "job_lease"),
    Setting("GMPFLOW_AUDIT_KEY_FILE", "beside the database", "the audit key (row and chain MACs)",
            "audit_key_file"),
    Setting("GMPFLOW_AUDIT_ANCHOR_FILE", "beside the audit key", "the audit chain's checkpoints",
            "audit_anchor_file"),
    Setting("GMPFLOW_AUDIT_ANCHOR_INTERVAL", "3600",
            "seconds between the worker's anchors of the chain (0: none)", "audit_anchor_interval"),
    Setting("GMPFLOW_FORMS_PATH", "the packs' forms", "further folders of shared forms", "forms_path"),
    Setting("GMPFLOW_MASTERDATA_PATH", "gmp/masterdata", "the master-data schemas and demo data",
            "masterdata_path"),
    Setting("GMPFLOW_FAILPOINT", "", "crash tests only: where a process dies on purpose",
            "engine.failpoints"),
    Setting("GMPFLOW_SIMULATOR", "on", "'off': `gmpflow run` starts no reference ERP/MES simulator",
            "connectors.simulator.demo"),
    Setting("GMPFLOW_SECRET_KEY", "a stored random secret", "the web app's session signing key",
            "secret_key"),
    Setting("GMPFLOW_SESSION_COOKIE_SECURE", "1", "'0': the session cookie is sent over plain HTTP too",
            "session_cookie_secure"),
    Setting("GMPFLOW_SESSION_IDLE_MINUTES", "15", "a browser session's idle timeout", "session_idle_minutes"),
    Setting("GMPFLOW_PASSWORD_RATE_LIMIT", "100 per minute",
            "failed password attempts (4xx answers) per client address", "password_rate_limit"),
    Setting("GMPFLOW_RATE_LIMIT_STORAGE_URI", "memory://", "a store the processes share for the rate limits",
            "rate_limit_storage_uri"),
    Setting("GMPFLOW_ARCHIVE_DIR", "instance/archive", "where released batch records are archived",
            "archive_dir"),
    Setting("GMPFLOW_WEB_THREADS", "2", "requests `gmpflow run` serves at once", "web_threads"),
)


@dataclass(frozen=True)
class Config:
    """Every setting of the engine, the web app and the GMP pack, typed and validated once. The defaults here
    are the installation's defaults (``SETTINGS`` says them in words)."""

    change_control: str = "required"                  # CHANGE_CONTROL_MODES
    change_control_process: str = "change_control"    # a process key
    database_url: str = DEFAULT_DATABASE_URL
    token_hours: float = 8.0                          # (0, 366 days]
    lockout_attempts: int = 5                         # >= 1
    job_lease: timedelta = timedelta(minutes=5)       # > 0; longer than any connector call may take
    audit_key_file: Path | None = None                # None: beside a SQLite file, else instance/audit.key
    audit_anchor_file: Path | None = None             # None: beside the audit key
    audit_anchor_interval: float = 3600.0             # seconds; 0: no scheduled anchors
    forms_path: tuple[Path, ...] = ()                 # (): the content pack's forms
    masterdata_path: Path | None = None               # None: the content pack's master data
    secret_key: str | None = None                     # None: generated once and kept in the database
    session_cookie_secure: bool = True
    session_idle_minutes: float = 15.0
    password_rate_limit: str = "100 per minute"
    rate_limit_storage_uri: str = "memory://"
    archive_dir: Path = field(default=Path("instance/archive"))
    web_threads: int = 2                              # >= 1; gmpflow run's request threads (webapp/server.py)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Config:
        """The configuration ``environ`` (default: the process's environment) gives; an unset or empty
        variable keeps its default. A value that means nothing raises DefinitionError ``bad_setting`` naming
        the variable and what it must be."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def read(name: str, default: T, parse: Callable[[str], T | None], must_be: str) -> T:
            value = env.get(name, "").strip()
            if not value:
                return default
            try:
                parsed = parse(value)
            except ValueError:
                parsed = None
            if parsed is None:
                raise DefinitionError(f"{name} must be {must_be}, not '{value}'.", code="bad_setting")
            return parsed

        def text(value: str) -> str:
            return value

        def path(value: str) -> Path:
            return Path(value)

        def number(low: float, high: float = float("inf"), *, low_inclusive: bool = False
                   ) -> Callable[[str], float | None]:
            def parse(value: str) -> float | None:
                number = float(value)
                above = number >= low if low_inclusive else number > low
                return number if above and number <= high else None
            return parse

        return cls(
            change_control=read("GMPFLOW_CHANGE_CONTROL", defaults.change_control,
                                lambda v: v if v in CHANGE_CONTROL_MODES else None, "'required' or 'off'"),
            change_control_process=read("GMPFLOW_CHANGE_CONTROL_PROCESS", defaults.change_control_process,
                                        text, "a process key"),
            database_url=read("GMPFLOW_DATABASE_URL", defaults.database_url, text, "a SQLAlchemy URL"),
            token_hours=read("GMPFLOW_TOKEN_HOURS", defaults.token_hours, number(0, 24 * 366),
                             "a positive number of hours (at most a year)"),
            lockout_attempts=read("GMPFLOW_LOCKOUT_ATTEMPTS", defaults.lockout_attempts,
                                  lambda v: int(v) if v.isdigit() and int(v) >= 1 else None,
                                  "a whole number of at least 1"),
            job_lease=read("GMPFLOW_JOB_LEASE_SECONDS", defaults.job_lease,
                           lambda v: timedelta(seconds=seconds) if (seconds := number(0)(v)) else None,
                           "a positive number of seconds"),
            audit_key_file=read("GMPFLOW_AUDIT_KEY_FILE", defaults.audit_key_file, path, "a file path"),
            audit_anchor_file=read("GMPFLOW_AUDIT_ANCHOR_FILE", defaults.audit_anchor_file, path,
                                   "a file path"),
            audit_anchor_interval=read("GMPFLOW_AUDIT_ANCHOR_INTERVAL", defaults.audit_anchor_interval,
                                       number(0, low_inclusive=True),
                                       "a number of seconds (0: no scheduled anchors)"),
            forms_path=read("GMPFLOW_FORMS_PATH", defaults.forms_path,
                            lambda v: tuple(Path(p) for p in v.split(os.pathsep) if p) or None,
                            f"folders separated by '{os.pathsep}'"),
            masterdata_path=read("GMPFLOW_MASTERDATA_PATH", defaults.masterdata_path, path, "a folder"),
            secret_key=read("GMPFLOW_SECRET_KEY", defaults.secret_key, text, "a secret"),
            session_cookie_secure=read("GMPFLOW_SESSION_COOKIE_SECURE", defaults.session_cookie_secure,
                                       lambda v: v != "0", "'0' or '1'"),
            session_idle_minutes=read("GMPFLOW_SESSION_IDLE_MINUTES", defaults.session_idle_minutes,
                                      number(0), "a positive number of minutes"),
            password_rate_limit=read("GMPFLOW_PASSWORD_RATE_LIMIT", defaults.password_rate_limit, text,
                                     "a rate limit such as '100 per minute'"),
            rate_limit_storage_uri=read("GMPFLOW_RATE_LIMIT_STORAGE_URI", defaults.rate_limit_storage_uri,
                                        text, "a storage URI such as 'redis://host:6379'"),
            archive_dir=read("GMPFLOW_ARCHIVE_DIR", defaults.archive_dir, path, "a folder"),
            web_threads=read("GMPFLOW_WEB_THREADS", defaults.web_threads,
                             lambda v: int(v) if v.isdigit() and 1 <= int(v) <= 64 else None,
                             "a whole number from 1 to 64"),
        )

    def forms_folders(self) -> list[Path]:
        """Where forms referenced by a model but not in its bundle are looked up: ``forms_path``, else the
        content pack's forms."""
        return list(self.forms_path) or [shipped.forms()]

    def masterdata_folder(self) -> Path:
        """The master-data schemas (and demo data): ``masterdata_path``, else the content pack's."""
        return self.masterdata_path or shipped.masterdata()
