"""A streaming ingest sink that writes the day's observations and quarantine to local Parquet files.

The files are built in a staging directory and only moved into the lake (``BlobStore.put_file``) after
the whole day decoded, so a failed run never leaves a partial partition behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from astromined.storage import staging_prefix
from astromined.telemetry.ingest import OBSERVATION_SCHEMA, QUARANTINE_SCHEMA

_FLOATS = [f.name for f in OBSERVATION_SCHEMA if pa.types.is_floating(f.type)]
_MONOTONIC = ["file_offset", "observed_at", "sequence_count", "asteroid_id"]
# Chosen by measurement (BENCHMARKS.md, telemetry ingest): offsets, times and counts are near-monotonic
# within a file (delta encoding); a handful of columns repeat per file (dictionary). Parquet's default, a
# dictionary attempt on every column, costs ~7x the write time on high-cardinality floats. Floats are
# byte-stream-split only when the pages are compressed: the split helps the compressor and nothing else
# (same size uncompressed, ~0.6 ns more per value). Min/max statistics are kept where readers prune on
# them (ids, times, offsets), not on the 20 float columns (~15 % of the write) nor on the file name (for
# a dictionary column Arrow finds the distinct values first: 8 of its 10 ns per row). No compression by
# default: LZ4 saves 11 % of the bytes (76 instead of 86 B/row) for ~25 % more write time.
_NO_STATISTICS = {*_FLOATS, "source_file"}
_MAX_ROWS_PER_PAGE = 1 << 20
OBSERVATION_COMPRESSION = "none"
QUARANTINE_COMPRESSION = "lz4"  # raw octets of damaged packets compress well, and the table is small


def observation_encoding(compression: str | None = OBSERVATION_COMPRESSION) -> dict:
    """``ParquetWriter`` keyword arguments of the observation table for pages compressed with
    ``compression``."""
    floats = "PLAIN" if str(compression).lower() in ("none", "uncompressed") else "BYTE_STREAM_SPLIT"
    return {
        "use_dictionary": ["source_file", "satellite_id", "quality_flags", "received_at"],
        "column_encoding": {
            **dict.fromkeys(_FLOATS, floats),
            **dict.fromkeys(_MONOTONIC, "DELTA_BINARY_PACKED"),
        },
        "write_statistics": [f.name for f in OBSERVATION_SCHEMA if f.name not in _NO_STATISTICS],
        # Pages end at data_page_size (1 MiB) rather than at Arrow's default of 20,000 rows: 13x fewer
        # pages, page headers and write calls per row group (~20 ns/row less on a local file system).
        "max_rows_per_page": _MAX_ROWS_PER_PAGE,
    }


class ParquetDaySink:
    def __init__(self, staging_dir: Path | None = None, compression: str = OBSERVATION_COMPRESSION):
        self.directory = Path(tempfile.mkdtemp(prefix=staging_prefix("ingest"), dir=staging_dir))
        self.observations_path = self.directory / "observations.parquet"
        self.quarantine_path = self.directory / "quarantine.parquet"
        self._observations = pq.ParquetWriter(
            self.observations_path,
            OBSERVATION_SCHEMA,
            compression=compression,
            **observation_encoding(compression),
        )
        self._quarantine = pq.ParquetWriter(
            self.quarantine_path, QUARANTINE_SCHEMA, compression=QUARANTINE_COMPRESSION
        )

    def write_observations(self, table: pa.Table) -> None:
        self._observations.write_table(table)

    def write_quarantine(self, table: pa.Table) -> None:
        self._quarantine.write_table(table)

    def close(self) -> None:
        """Finish both files (each a valid Parquet file with its schema, even when empty)."""
        self._observations.close()
        self._quarantine.close()

    def __enter__(self) -> ParquetDaySink:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._observations.is_open:
            self._observations.close()
        if self._quarantine.is_open:
            self._quarantine.close()
        shutil.rmtree(self.directory, ignore_errors=True)
