"""Structured logs: key=value lines on a terminal, JSON when `MORNET_LOG_JSON=1`."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(level: int = logging.INFO) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if os.environ.get("MORNET_LOG_JSON") == "1"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Logs go to stderr so that commands can print results (JSON) on stdout.
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs a line per request, and the platform makes many (the sandbox bank's calls
    # and notifications, JSON-RPC to the chain): a warning is worth a line, a request is not.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
