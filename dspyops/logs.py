"""structlog set-up shared by both services: JSON lines on stderr.

Request handlers bind job_id / deployment with structlog's contextvars, so every line a
job or a prediction causes carries them. Nothing here ever formats a secret: LM configs
are logged through LMConfig.public_dict().
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(service: str, level: str | None = None) -> structlog.stdlib.BoundLogger:
    level_name = (level or os.environ.get("DSPYOPS_LOG_LEVEL", "info")).upper()
    numeric = logging.getLevelName(level_name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger(service=service)
