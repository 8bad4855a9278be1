"""Run the app under uvicorn: one process in-process (SIGHUP reloads), or several workers.

With ``workers > 1`` uvicorn's supervisor starts the worker processes, each building its
own state from the settings passed in the environment (each writes its own log part
files: the file names carry the pid; their metrics add up in one folder, see
:mod:`gitml.serve.metrics`). SIGHUP to the supervisor restarts the workers one
by one, which reloads the model too.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gitml.serve.state import ServeSettings, ServeState

log = logging.getLogger(__name__)
SETTINGS_ENV = "GITML_SERVE_SETTINGS"
GRACEFUL_SECONDS = 30


def build_app(settings: ServeSettings) -> tuple[Any, ServeState]:
    from gitml.serve.app import create_app

    limit_threads()
    state = ServeState(settings)
    return create_app(state), state


def app_from_env() -> Any:
    """uvicorn factory for worker processes."""
    app, _ = build_app(ServeSettings.from_json(os.environ[SETTINGS_ENV]))
    return app


def limit_threads() -> None:
    """One compute thread per worker process, unless OMP_NUM_THREADS says otherwise.

    Intra-op threads (OpenMP in torch) spin while they wait for each other; next to the
    event loop and the log writer they stall more than they help, and a 1,000-row
    request ran 5-10x slower with them. Scale with ``--workers`` instead.
    """
    import sys

    if "OMP_NUM_THREADS" in os.environ:
        return
    os.environ["OMP_NUM_THREADS"] = "1"  # for libraries that read it when first used
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def run(settings: ServeSettings) -> None:
    """Serve until SIGTERM/SIGINT; flushes the logs on the way out."""
    import uvicorn

    from gitml.serve.connections import HEADER_TIMEOUT_ATTR, DeadlineHttpProtocol

    limit_threads()
    cfg = settings.cfg
    common: dict[str, Any] = {"host": cfg.host, "port": cfg.port, "access_log": False, "log_level": "info",
                              "timeout_graceful_shutdown": GRACEFUL_SECONDS, "lifespan": "on",
                              "http": DeadlineHttpProtocol, "timeout_keep_alive": cfg.keep_alive_seconds,
                              "limit_concurrency": cfg.max_connections}
    if cfg.workers > 1:
        _check_source(settings)
        os.environ[SETTINGS_ENV] = settings.to_json()
        log.info("starting %d workers on %s:%d <serve.workers>", cfg.workers, cfg.host, cfg.port)
        with _metrics_folder():
            config = uvicorn.Config("gitml.serve.server:app_from_env", factory=True, workers=cfg.workers, **common)
            setattr(config, HEADER_TIMEOUT_ATTR, cfg.header_timeout_seconds)  # pickled into each worker
            _run_workers(config)
        return
    app, state = build_app(settings)
    config = uvicorn.Config(app, **common)
    setattr(config, HEADER_TIMEOUT_ATTR, cfg.header_timeout_seconds)
    server = uvicorn.Server(config)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: state.hangup())
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found;
    # make that handler its own, so a graceful stop exits 0 instead of dying by the signal.
    signal.signal(signal.SIGTERM, server.handle_exit)
    log.info("listening on http://%s:%d <serve.host, serve.port>", cfg.host, cfg.port)
    server.run()


@contextmanager
def _metrics_folder() -> Iterator[None]:
    """A fresh folder for the workers' Prometheus files (one set of sums for /metrics), removed after.

    A ``PROMETHEUS_MULTIPROC_DIR`` already set is the operator's: used as it is, kept.
    """
    from gitml.serve.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="gitml-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(folder, ignore_errors=True)


def _run_workers(config: Any) -> None:
    """What ``uvicorn.run`` does for workers, with TCP_NODELAY on the shared listening socket.

    uvicorn creates that socket without naming the protocol, so asyncio does not switch
    Nagle's algorithm off on the connections it accepts, and every small answer waited for
    the client's delayed ACK (40 ms). Accepted sockets inherit the option from the listener.
    """
    import socket

    from uvicorn.supervisors import Multiprocess

    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()


def _check_source(settings: ServeSettings) -> None:
    """Load every model once in the supervisor, so a bad bundle fails before any worker starts
    (with serve.lazy_load too: a model that cannot load would fail its first requests)."""
    from gitml.serve.follow import Follower

    for name in settings.names():
        follower = Follower(settings.source(name), settings.cfg.follow_interval_seconds, False)
        try:
            follower.load_initial()
        finally:
            follower.stop()
