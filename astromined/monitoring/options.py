"""The exporter's command-line options (no Dagster import, so `astromined --help` stays fast)."""

from __future__ import annotations

import argparse

DEFAULT_PORT = 9464
DEFAULT_REFRESH_INTERVAL_S = 15.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a pod)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--refresh-interval",
        type=float,
        default=DEFAULT_REFRESH_INTERVAL_S,
        help=f"seconds between refreshes from the Dagster instance (default {DEFAULT_REFRESH_INTERVAL_S:g})",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
