"""ParquetDaySink: the same table as MemorySink, with the encodings and statistics chosen for it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astromined.sim.downlink import LinkConditions, simulate_satellite_day
from astromined.sim.population import generate_population
from astromined.telemetry.ingest import OBSERVATION_SCHEMA, MemorySink, stream_day
from astromined.telemetry.parquet_sink import ParquetDaySink

DAY = dt.date(2031, 5, 17)
FLOATS = [f.name for f in OBSERVATION_SCHEMA if pa.types.is_floating(f.type)]


@pytest.fixture(scope="module")
def files() -> list[tuple[str, bytes]]:
    population = generate_population(2_000, 3)
    link = LinkConditions(duplicate_rate=0.05, bit_flip_rate=0.01, loss_rate=0.02)
    downlinks = [simulate_satellite_day(population, DAY, s, 300, 3, link) for s in (1, 2, 3)]
    return [(d.file_name, d.data) for d in downlinks]


def _frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    frame["source_file"] = frame["source_file"].astype(str)
    return frame.sort_values(["source_file", "file_offset"]).reset_index(drop=True)


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_parquet_day_sink_writes_what_memory_sink_collects(files, tmp_path: Path, compression: str) -> None:
    memory = MemorySink()
    stream_day(DAY, ((name, lambda data=data: data) for name, data in files), memory, batch_rows=500)
    with ParquetDaySink(tmp_path, compression=compression) as sink:
        stream_day(DAY, ((name, lambda data=data: data) for name, data in files), sink, batch_rows=500)
        sink.close()
        written = pq.read_table(sink.observations_path)
        metadata = pq.ParquetFile(sink.observations_path).metadata
    assert written.schema.equals(OBSERVATION_SCHEMA)
    # pandas: NaN (radar albedo not measured) equals NaN in the same place
    assert _frame(written).equals(_frame(pa.concat_tables(memory.observations)))

    assert metadata.num_row_groups > 1
    column = {metadata.schema.column(i).name: i for i in range(metadata.num_columns)}
    for group in range(metadata.num_row_groups):
        chunks = metadata.row_group(group)
        split = "BYTE_STREAM_SPLIT" in chunks.column(column[FLOATS[0]]).encodings
        assert split == (compression != "none")  # the split only helps a compressor
        for name in [*FLOATS, "source_file"]:
            assert not chunks.column(column[name]).is_stats_set, name
        for name in ("satellite_id", "observed_at", "file_offset"):
            assert chunks.column(column[name]).is_stats_set, name
        assert "DELTA_BINARY_PACKED" in chunks.column(column["observed_at"]).encodings
