"""The installation's configuration: one object built once from the environment (``Config.from_environ``), and
the catalogue of every ``GMPFLOW_*`` variable the engine and the web app read (``SETTINGS``).

``Gmpflow`` takes a ``Config`` (default: built from ``os.environ`` when the engine is made) and reads its
change-control settings from it only. The settings still read where they are used are named in ``SETTINGS``
with the module that reads them, so a reader finds every setting here; a connector's settings are its own
(``connectors.hookspecs.Setting``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from engine.errors import DefinitionError

CHANGE_CONTROL_MODES = ("required", "off")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str
    read_by: str  # the module that reads it


SETTINGS = (
    Setting("GMPFLOW_DATABASE_URL", "sqlite:///instance/gmpflow.db", "the database (SQLAlchemy URL)",
            "engine.store.db"),
    Setting("GMPFLOW_CHANGE_CONTROL", "required", "'off' activates deployments and master data directly",
            "engine.config"),
    Setting("GMPFLOW_CHANGE_CONTROL_PROCESS", "change_control",
            "the process whose instances alone make versions effective", "engine.config"),
    Setting("GMPFLOW_TOKEN_HOURS", "8", "the longest life of an API token or browser session",
            "engine.sessions"),
    Setting("GMPFLOW_LOCKOUT_ATTEMPTS", "5", "failed logins or signings that lock an account",
            "engine.identity"),
    Setting("GMPFLOW_JOB_LEASE_SECONDS", "300", "how long a worker holds a claimed job",
            "engine.runtime.jobs"),
    Setting("GMPFLOW_AUDIT_KEY_FILE", "beside the database", "the audit key (row and chain MACs)",
            "engine.integrity"),
    Setting("GMPFLOW_AUDIT_ANCHOR_FILE", "beside the audit key", "the audit chain's checkpoints",
            "engine.anchors"),
    Setting("GMPFLOW_AUDIT_ANCHOR_INTERVAL", "", "how often the worker anchors the chain", "engine.anchors"),
    Setting("GMPFLOW_FORMS_PATH", "the packs' forms", "further folders of shared forms",
            "engine.definitions.bundle"),
    Setting("GMPFLOW_MASTERDATA_PATH", "gmp/masterdata", "the master-data schemas and demo data",
            "engine.masterdata.types"),
    Setting("GMPFLOW_FAILPOINT", "", "crash tests only: where a process dies on purpose",
            "engine.failpoints"),
    Setting("GMPFLOW_SIMULATOR", "on", "'off': `gmpflow run` starts no reference ERP/MES simulator",
            "engine.cli"),
    Setting("GMPFLOW_SECRET_KEY", "a stored random secret", "the web app's session signing key", "webapp"),
    Setting("GMPFLOW_SESSION_COOKIE_SECURE", "1", "'0': the session cookie is sent over plain HTTP too",
            "webapp.guard"),
    Setting("GMPFLOW_SESSION_IDLE_MINUTES", "15", "a browser session's idle timeout", "webapp.guard"),
    Setting("GMPFLOW_PASSWORD_RATE_LIMIT", "100 per minute",
            "failed password attempts (4xx answers) per client address", "webapp.ratelimits"),
    Setting("GMPFLOW_RATE_LIMIT_STORAGE_URI", "memory://", "a store the processes share for the rate limits",
            "webapp.ratelimits"),
    Setting("GMPFLOW_ARCHIVE_DIR", "instance/archive", "where released batch records are archived",
            "gmp.batch_record"),
)


@dataclass(frozen=True)
class Config:
    """The settings the engine's composition reads, validated once."""

    change_control: str = "required"                  # CHANGE_CONTROL_MODES
    change_control_process: str = "change_control"    # a process key

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Config:
        """The configuration ``environ`` (default: the process's environment) gives; a value that means
        nothing raises DefinitionError ``bad_setting`` naming the variable."""
        environ = os.environ if environ is None else environ
        mode = environ.get("GMPFLOW_CHANGE_CONTROL") or "required"
        if mode not in CHANGE_CONTROL_MODES:
            raise DefinitionError(f"GMPFLOW_CHANGE_CONTROL must be 'required' or 'off', not '{mode}'.",
                                  code="bad_setting")
        return cls(change_control=mode,
                   change_control_process=environ.get("GMPFLOW_CHANGE_CONTROL_PROCESS") or "change_control")
