"""The downlink file name, ``sat-NNN_YYYYMMDDTHHMMSSZ.ccsds``: written by the fleet (and its simulator),
read by ingest to learn a file's satellite and receive time (docs/telemetry-format.md).

Part of the wire contract, so it lives with the packet format: ingest needs it without loading the
simulator, and the simulator names its files with it.
"""

from __future__ import annotations

import datetime as dt
import re

_DOWNLINK_FILE_NAME = re.compile(r"sat-(?P<satellite>[0-9]{3})_(?P<received>[0-9]{8}T[0-9]{6}Z)\.ccsds")


def downlink_file_name(satellite_id: int, received_at: dt.datetime) -> str:
    return f"sat-{satellite_id:03d}_{received_at:%Y%m%dT%H%M%SZ}.ccsds"


def parse_downlink_file_name(name: str) -> tuple[int, dt.datetime]:
    """Inverse of downlink_file_name; raises ValueError naming the file when it does not match."""
    base = name.rsplit("/", 1)[-1]
    try:
        # Exact digit counts: int() and strptime() alone would also take "sat--7", "sat- 7" or "2031518T...".
        match = _DOWNLINK_FILE_NAME.fullmatch(base)
        if match is None:
            raise ValueError
        satellite_id = int(match["satellite"])
        received_at = dt.datetime.strptime(match["received"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise ValueError(
            f"downlink file name {name!r} does not match 'sat-NNN_YYYYMMDDTHHMMSSZ.ccsds'"
        ) from exc
    return satellite_id, received_at
