"""The tracking store's health: a store that is down, locked, read-only or damaged is one line, never a hang.

Left alone, MLflow's HTTP client retries a server that is down with exponential backoff for minutes (7 retries,
120 s per attempt), so a command against a dead ``MLFLOW_TRACKING_URI`` hangs without a word, and SQLite
failures surface as SQLAlchemy tracebacks. Here:

- :func:`bound_http_retries` gives MLflow's retry and timeout variables tighter defaults for the process that
  makes a Tracker (:data:`HTTP_LIMITS`); a value set in the environment is left as it is.
- :func:`probe` asks the store once, when a Tracker is made: a server must answer within
  :data:`PROBE_SECONDS` without retries, and an SQLite file must open and be readable.
- :class:`GuardedClient` wraps the MLflow client: the store failures it recognises (refused, no answer, locked,
  read-only, damaged, cannot be created) become :class:`TrackingStoreError`, a one-line message naming the store
  and the fix, which the CLI prints as ``error: ...`` (exit 2). Every other error passes unchanged.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlparse

from dualvgr.core.errors import HarnessError

# MLflow's defaults are 7 retries, backoff factor 2 and 120 s per attempt (minutes against a dead server). These
# wait about 6 s (+ jitter) for a refused connection and under 90 s for one that never answers: enough to ride
# out a restarting server mid-run, short enough that a dead one ends the command.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
PROBE_SECONDS = 5.0  # a healthy server answers in milliseconds; the probe does not retry
SQLITE_LOCK_SECONDS = 5.0  # how long the probe waits for another process's write lock (healthy ones last ms)
_DEFAULT_STORE = "./mlflow.db"


class TrackingStoreError(HarnessError):
    """The tracking store cannot be used (down, locked, read-only, damaged): what and the fix, in one line."""


def is_http(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def bound_http_retries(environ: dict | os._Environ = os.environ) -> None:
    """MLflow reads its HTTP limits from the environment on every request: set ours where the user set none."""
    for name, value in HTTP_LIMITS.items():
        environ.setdefault(name, value)


def probe(client: Any, uri: str) -> None:
    """Fail now, in seconds, if the store cannot answer or (SQLite) be written; later calls rarely meet a dead
    store then."""
    if is_http(uri):
        _probe_server(uri)
    with translated(uri):
        client.search_experiments(max_results=1)
        if uri.startswith("sqlite:"):
            _probe_sqlite(uri)


def probe_server_of(uri: str) -> None:
    """The server probe alone, for a URI taken from the environment (no MLflow import needed)."""
    if is_http(uri):
        _probe_server(uri)


def _probe_server(uri: str) -> None:
    import requests

    try:
        # Any HTTP answer (even 401 or 404) shows a server is there; the client's own calls judge the rest.
        requests.get(uri.rstrip("/") + "/health", timeout=PROBE_SECONDS)
    except requests.exceptions.SSLError:
        return  # a TLS setup (custom CA, MLFLOW_TRACKING_INSECURE_TLS) is the MLflow client's to check
    except requests.exceptions.RequestException as error:
        raise TrackingStoreError(_server_message(uri, _http_reason(str(error), PROBE_SECONDS))) from error


def _probe_sqlite(uri: str) -> None:
    """One write transaction that changes nothing (the header's user_version set to itself): a file another
    process keeps locked, or one that cannot be written, shows now instead of at the first run's tags.

    MLflow waits 20 s for a lock on each write; a healthy store's locks last milliseconds.
    """
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if not url.database or url.database == ":memory:":
        return
    if url.database.startswith("file:"):  # SQLite URI form, e.g. ?mode=ro: keep its parameters
        query = "&".join(f"{key}={value}" for key, value in url.query.items() if key != "uri")
        target, as_uri = url.database + (f"?{query}" if query else ""), True
    else:
        target, as_uri = url.database, False
    connection = sqlite3.connect(target, uri=as_uri, timeout=SQLITE_LOCK_SECONDS, isolation_level=None)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(f"PRAGMA user_version = {int(version)}")
        connection.execute("COMMIT")
    finally:
        connection.close()


def quiet_store_logging() -> None:
    """MLflow logs each SQLite failure with its traceback before raising it; the ones translated here are said
    once, in one line, so their log records are dropped (every other record stays)."""
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(existing, _TranslatedRecords) for existing in logger.filters):
        logger.addFilter(_TranslatedRecords())


class _TranslatedRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        chain = list(_chain(error))
        return _sqlite_failure(chain, " ".join(str(e) for e in chain), "", creating=False) is None


class GuardedClient:
    """An ``MlflowClient`` whose store failures are :class:`TrackingStoreError` (see :func:`store_failure`)."""

    def __init__(self, client: Any, uri: str):
        self._client = client
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def guarded(*args, **kwargs):
            with translated(self._uri):
                return value(*args, **kwargs)

        return guarded


@contextmanager
def translated(uri: str, *, creating: bool = False) -> Iterator[None]:
    """Re-raise a recognised store failure as :class:`TrackingStoreError`; anything else unchanged.

    ``creating``: the store is being opened, so a file-system error is the store's (its folder cannot be made).
    """
    try:
        yield
    except TrackingStoreError:
        raise
    except Exception as error:
        failure = store_failure(error, uri, creating=creating)
        if failure is None:
            raise
        raise failure from error


def store_failure(error: BaseException, uri: str, *, creating: bool = False) -> TrackingStoreError | None:
    """The one-line error for a store failure (anywhere in ``error``'s chain), or None when it is none."""
    chain = list(_chain(error))
    text = " ".join(str(e) for e in chain)
    if is_http(uri):
        if any(_is_connection_error(e) for e in chain) or (
                "API request to" in text and ("Max retries exceeded" in text or "timeout" in text.lower())):
            timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_LIMITS["MLFLOW_HTTP_REQUEST_TIMEOUT"]))
            return TrackingStoreError(_server_message(uri, _http_reason(text, timeout)))
        return None
    if uri.startswith("sqlite:"):
        return _sqlite_failure(chain, text, sqlite_path(uri), creating)
    return None


def sqlite_path(uri: str) -> str:
    """The file of an ``sqlite:///`` URI (``sqlite:///file:PATH?mode=ro&uri=true`` included)."""
    from sqlalchemy.engine import make_url

    database = make_url(uri).database or ""
    return database[len("file:"):] if database.startswith("file:") else database


def _sqlite_failure(chain: list[BaseException], text: str, path: str, creating: bool) -> TrackingStoreError | None:
    elsewhere = "or point MLFLOW_TRACKING_URI at another store"
    for error in chain if creating else ():
        if isinstance(error, OSError):
            return TrackingStoreError(
                f"the tracking store {path} cannot be created (making its folder: {error.strerror or error}: {error.filename}); "
                f"make its folder a writable directory, {elsewhere}")
    if not any(isinstance(e, sqlite3.Error) or type(e).__module__.startswith("sqlalchemy") for e in chain):
        return None
    lowered = text.lower()
    if "database is locked" in lowered:
        return TrackingStoreError(
            f"the tracking store {path} is locked by another process (SQLite: database is locked); wait for that "
            f"process to finish or stop it (`fuser {path}` names it), {elsewhere}")
    if "readonly database" in lowered:
        return TrackingStoreError(
            f"the tracking store {path} is read-only (SQLite: attempt to write a readonly database); fix the "
            f"permissions of the file and of its folder, or point MLFLOW_TRACKING_URI at a writable store")
    if "unable to open database file" in lowered:
        return TrackingStoreError(
            f"the tracking store {path} cannot be opened (SQLite: unable to open database file); make sure its "
            f"folder exists and is writable, {elsewhere}")
    if "file is not a database" in lowered or "malformed" in lowered:
        return TrackingStoreError(
            f"the tracking store {path} is damaged or not an MLflow database (SQLite: "
            f"{'file is not a database' if 'file is not a database' in lowered else 'database disk image is malformed'}"
            f"); move it aside (mv {path} {path}.damaged) to start an empty store, {elsewhere}")
    return None


def _server_message(uri: str, reason: str) -> str:
    parsed = urlparse(uri)
    start = f"mlflow server --host {parsed.hostname} --port {parsed.port or (443 if parsed.scheme == 'https' else 80)}"
    fallback = "unset MLFLOW_TRACKING_URI to use " + _DEFAULT_STORE if "MLFLOW_TRACKING_URI" in os.environ else \
        "use another tracking URI"
    return f"the MLflow tracking server at {uri} does not answer ({reason}); start it ({start} ...) or {fallback}"


def _http_reason(text: str, timeout: float) -> str:
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text.lower():
        return f"no response within {timeout:g} s"
    if "NameResolution" in text or "Name or service not known" in text or "getaddrinfo" in text:
        return "host name not found"
    if "error responses" in text:
        return "it answers only with server errors"
    return "cannot connect"


def _is_connection_error(error: BaseException) -> bool:
    name = type(error).__name__
    return type(error).__module__.split(".")[0] in ("requests", "urllib3") and (
        "Connection" in name or "Timeout" in name or "MaxRetry" in name)


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
