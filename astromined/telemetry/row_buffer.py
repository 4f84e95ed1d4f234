"""The reusable row buffer the ingest fills (``RowBuffer``): the observation table's columns for a batch
of rows plus the per-packet work arrays of the kernels, carved from one allocation so that the arrays the
hot loops write side by side do not evict each other from the cache (``_StaggeredArena``).
"""

from __future__ import annotations

import numpy as np

from astromined.telemetry import packet_format as fmt

# The float32 columns of the observation table, in its order: scalar fields, then reflectance bands.
SCALAR_FLOAT_FIELDS = [
    name for name in fmt.PAYLOAD_DTYPE.names if name not in ("asteroid_id", "reflectance", "quality_flags")
]
FLOAT_COLUMNS = len(SCALAR_FLOAT_FIELDS) + fmt.N_BANDS


# Columns written side by side (one value per row each) must not start at addresses that map to the same
# cache sets. numpy's large arrays all start at the same offset in a page, so the ~35 arrays the two
# passes write would compete for the 8 ways of one L1 set (4 KiB period) and one L2 set (64 KiB period on
# a 512 KiB, 8-way L2) and nearly every store would miss both: the row output cost ~90 ns/packet more
# than the checks alone, ~40 ns staggered (BENCHMARKS.md). Each array here starts _STAGGER bytes further
# into the period than the one before.
_SET_PERIOD = 1 << 16
_STAGGER = 5 * 64  # an odd number of cache lines: distinct L1 sets for up to 64 arrays


class _StaggeredArena:
    """Arrays of ``capacity`` values carved one after the other from one allocation, the n-th starting
    ``n * _STAGGER`` bytes past a multiple of _SET_PERIOD (so in cache sets of its own), with less than
    _SET_PERIOD of padding before each. ``layout`` lists them as (columns, dtype): one column is a 1-D
    array, more are a ``(columns, capacity)`` array of contiguous rows, each staggered.
    """

    def __init__(self, capacity: int, layout: list[tuple[int, type]]):
        assert sum(columns for columns, _ in layout) * _STAGGER < _SET_PERIOD
        starts, cursor, index = [], 0, 0
        for columns, dtype in layout:
            stride = self._row_stride(capacity, dtype)
            start = cursor + (index * _STAGGER - cursor) % _SET_PERIOD
            starts.append(start)
            cursor = start + stride * columns
            index += columns
        memory = np.empty(cursor + _SET_PERIOD, dtype=np.uint8)
        base = -memory.ctypes.data % _SET_PERIOD
        self.arrays = [
            self._carve(memory, base + start, capacity, columns, np.dtype(dtype))
            for start, (columns, dtype) in zip(starts, layout, strict=True)
        ]

    @staticmethod
    def _row_stride(capacity: int, dtype: type) -> int:
        """Bytes from one row of a 2-D array to the next: the row, rounded up so that the next row
        starts one _STAGGER later in the period."""
        size = capacity * np.dtype(dtype).itemsize
        return size + (_STAGGER - size) % _SET_PERIOD

    def _carve(self, memory: np.ndarray, start: int, capacity: int, columns: int, dtype: np.dtype):
        if columns == 1:
            return memory[start : start + capacity * dtype.itemsize].view(dtype)
        first = memory[start : start + dtype.itemsize].view(dtype)
        stride = self._row_stride(capacity, dtype)
        return np.lib.stride_tricks.as_strided(
            first, shape=(columns, capacity), strides=(stride, dtype.itemsize), writeable=True
        )


# The integer columns of RowBuffer, in the order it names them.
_ROW_COLUMNS = [np.int32, np.int32, np.int64, np.int64, np.int32, np.int32, np.int64, np.int64]


class RowBuffer:
    """Reusable columns of the observation table for up to ``capacity`` rows, filled satellite by
    satellite (``satellite_rows``) and handed out as zero-copy views (``columns``) when full, plus the
    per-packet work arrays of the satellite being checked (``scratch``).

    Reusing one buffer keeps the hot loops off freshly mapped memory (page faults) and gives every
    written Parquet row group one contiguous chunk per column with one dictionary of file names.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.rows = 0
        self.file_names: list[str] = []
        # Per packet: check code, APID, sequence count, time; per listed packet: its position, its sort
        # key and whether it repeats an earlier one (see satellite_rows). Overwritten by the next satellite.
        scratch = [np.uint8, np.int32, np.int32, np.float64, np.int64, np.int64, np.bool_]
        arrays = _StaggeredArena(
            capacity,
            [(FLOAT_COLUMNS, np.uint32), *[(1, dtype) for dtype in _ROW_COLUMNS + scratch]],
        ).arrays
        self.floats = arrays[0]
        (
            self.satellite_id,
            self.sequence_count,
            self.observed_us,
            self.asteroid_id,
            self.quality_flags,
            self.source_file,
            self.file_offset,
            self.received_us,
        ) = arrays[1 : 1 + len(_ROW_COLUMNS)]
        self.scratch = tuple(arrays[1 + len(_ROW_COLUMNS) :])

    def columns(self) -> dict[str, np.ndarray]:
        """Views of the filled rows: the integer columns by name, ``floats`` as ``(20, rows)`` float32 in
        ``SCALAR_FLOAT_FIELDS`` + bands order (each row contiguous); ``source_file`` indexes
        ``file_names``. Valid until the buffer is cleared and refilled."""
        n = self.rows
        return {
            "satellite_id": self.satellite_id[:n],
            "sequence_count": self.sequence_count[:n],
            "observed_us": self.observed_us[:n],
            "asteroid_id": self.asteroid_id[:n],
            "floats": self.floats[:, :n].view(np.float32),
            "quality_flags": self.quality_flags[:n],
            "source_file": self.source_file[:n],
            "file_offset": self.file_offset[:n],
            "received_us": self.received_us[:n],
        }

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The whole column arrays, in the order the kernels take them."""
        return (
            self.satellite_id,
            self.sequence_count,
            self.observed_us,
            self.asteroid_id,
            self.floats,
            self.quality_flags,
            self.source_file,
            self.file_offset,
            self.received_us,
        )

    def clear(self) -> None:
        self.rows = 0
        self.file_names = []
