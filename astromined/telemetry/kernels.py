"""Compiled kernels (numba) for the ingest hot path: one pass per packet instead of ~100 numpy passes.

The numpy implementations stay the specification: ``packet_format.crc16_ccitt`` (CRC),
``decode.frame_packets_reference`` (framing), ``decode.validate_packets`` (check codes),
``decode.observation_columns_reference`` (columns), ``decode.duplicate_mask`` and
``decode.lost_packet_counts``. tests/unit/telemetry/test_kernels.py checks these kernels against them
with hypothesis, corrupt and out-of-range packets included. What the kernels buy (BENCHMARKS.md): the
numpy CRC made 49 gather-and-XOR passes over the batch, the column extraction one strided byte-swapping
copy per field, duplicates and losses two three-key lexsorts; here each stage reads a packet once.

Packets are read as ``(n, 25)`` little-endian ``uint32`` words (``packet_words``); a big-endian field of
the wire format is the byte-swapped word (``_bswap32``) or, for 16-bit fields, two octets of a word.

Compiled code is cached on disk (``_jit``), so only the first process after an install pays the
compilation (~15 s of CPU); later processes load it in ~1 s. ``warm_up`` does either eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np

from astromined.telemetry import packet_format as fmt

WORDS_PER_PACKET = fmt.PACKET_SIZE // 4
assert fmt.PACKET_SIZE % 4 == 0 and fmt.CRC_OFFSET == 4 * (WORDS_PER_PACKET - 1) + 2

# Check codes, in the order the checks run (the first failing check names the quarantine reason).
# decode.py maps them to reasons and details and asserts it uses the same order.
CODE_OK = 0
CODE_CRC = 1
CODE_SEQUENCE_FLAGS = 2
CODE_APID = 3
CODE_TIMESTAMP = 4
CODE_FIRST_RANGE = 5  # then one code per field of VALUE_RANGES, in its order


def _payload_word(field: str) -> int:
    """Index of the 32-bit word of a packet where a payload field starts."""
    offset = fmt.PACKET_DTYPE.fields["payload"][1] + fmt.PAYLOAD_DTYPE.fields[field][1]
    assert offset % 4 == 0, field
    return offset // 4


RANGE_FIELDS = list(fmt.VALUE_RANGES)
_RANGE_FIRST_WORD = np.array([_payload_word(f) for f in RANGE_FIELDS], dtype=np.int64)
_RANGE_WORDS = np.array([fmt.PAYLOAD_DTYPE.fields[f][0].itemsize // 4 for f in RANGE_FIELDS], dtype=np.int64)
_RANGE_LOW = np.array([low for low, _ in fmt.VALUE_RANGES.values()], dtype=np.float32)
_RANGE_HIGH = np.array([high for _, high in fmt.VALUE_RANGES.values()], dtype=np.float32)
_RANGE_NAN_OK = np.array([f == "radar_albedo" for f in RANGE_FIELDS], dtype=np.bool_)
# The same ranges per 32-bit word, for a branch-free first test of a whole packet: the checked fields
# are consecutive words (range_km .. sensor_temperature_k, asteroid_id before them is not checked).
_FIRST_CHECKED_WORD = int(_RANGE_FIRST_WORD.min())
_CHECKED_WORDS = int((_RANGE_FIRST_WORD + _RANGE_WORDS).max()) - _FIRST_CHECKED_WORD
_WORD_LOW = np.full(_CHECKED_WORDS, -np.inf, dtype=np.float32)
_WORD_HIGH = np.full(_CHECKED_WORDS, np.inf, dtype=np.float32)
_WORD_NAN_OK = np.zeros(_CHECKED_WORDS, dtype=np.bool_)
for _k in range(len(RANGE_FIELDS)):
    _words = slice(
        _RANGE_FIRST_WORD[_k] - _FIRST_CHECKED_WORD,
        _RANGE_FIRST_WORD[_k] - _FIRST_CHECKED_WORD + _RANGE_WORDS[_k],
    )
    _WORD_LOW[_words], _WORD_HIGH[_words], _WORD_NAN_OK[_words] = (
        _RANGE_LOW[_k],
        _RANGE_HIGH[_k],
        _RANGE_NAN_OK[_k],
    )
assert int(_RANGE_WORDS.sum()) == _CHECKED_WORDS, "checked payload fields must be consecutive words"

# The float32 columns of the observation table, in its order: scalar fields, then reflectance bands.
SCALAR_FLOAT_FIELDS = [
    name for name in fmt.PAYLOAD_DTYPE.names if name not in ("asteroid_id", "reflectance", "quality_flags")
]
_FLOAT_COLUMN_WORDS = np.array(
    [_payload_word(f) for f in SCALAR_FLOAT_FIELDS]
    + [_payload_word("reflectance") + band for band in range(fmt.N_BANDS)],
    dtype=np.int64,
)
_ASTEROID_WORD = _payload_word("asteroid_id")
_QUALITY_WORD = _payload_word("quality_flags")
assert fmt.PAYLOAD_DTYPE.fields["asteroid_id"][0] == np.dtype(">u4")
assert fmt.PACKET_DTYPE.fields["payload"][1] + fmt.PAYLOAD_DTYPE.fields["quality_flags"][1] == 96


def crc16_slicing_tables(slices: int = 16) -> np.ndarray:
    """Tables for CRC-16/CCITT "slicing-by-N": row k is the CRC effect of an octet followed by k zeros.

    With them, 16 octets cost 16 independent lookups XORed together instead of a 16-step chain.
    """
    tables = np.zeros((slices, 256), dtype=np.uint16)
    tables[0] = fmt.CRC16_TABLE
    for k in range(1, slices):
        previous = tables[k - 1].astype(np.uint32)
        tables[k] = ((previous << 8) & 0xFFFF) ^ fmt.CRC16_TABLE[previous >> 8]
    return tables


CRC16_SLICING_16 = crc16_slicing_tables(16)


def packet_words(packets: np.ndarray) -> np.ndarray:
    """A C-contiguous array of packets (PACKET_DTYPE or ``(n, 100)`` uint8) as ``(n, 25)`` '<u4' words."""
    rows = np.ascontiguousarray(packets).view(np.uint8).reshape(-1, fmt.PACKET_SIZE)
    return rows.view("<u4")


def _jit(function):
    """``numba.njit`` with the compiled code cached on disk where numba finds a writable place (next to
    this module, else NUMBA_CACHE_DIR or the user's cache directory); without one (a read-only image),
    compiled once per process instead of failing at import."""
    try:
        return numba.njit(nogil=True, cache=True, boundscheck=False)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, cache=False, boundscheck=False)(function)


@_jit
def _bswap32(word):
    """The low 32 bits of ``word`` with their octets reversed (LLVM compiles this to one instruction)."""
    return np.uint32(
        ((word & 0xFF) << 24) | ((word & 0xFF00) << 8) | ((word >> 8) & 0xFF00) | ((word >> 24) & 0xFF)
    )


@_jit
def _crc16(w, tables):
    """CRC-16/CCITT-FALSE over octets 0..97 of one packet given as 25 little-endian words."""
    crc = np.uint32(0xFFFF)
    for j in range(0, WORDS_PER_PACKET - 1, 4):
        a = np.uint32(w[j])
        b = np.uint32(w[j + 1])
        c = np.uint32(w[j + 2])
        d = np.uint32(w[j + 3])
        crc = (
            tables[15, (a ^ (crc >> 8)) & 0xFF]
            ^ tables[14, ((a >> 8) ^ crc) & 0xFF]
            ^ tables[13, (a >> 16) & 0xFF]
            ^ tables[12, a >> 24]
            ^ tables[11, b & 0xFF]
            ^ tables[10, (b >> 8) & 0xFF]
            ^ tables[9, (b >> 16) & 0xFF]
            ^ tables[8, b >> 24]
            ^ tables[7, c & 0xFF]
            ^ tables[6, (c >> 8) & 0xFF]
            ^ tables[5, (c >> 16) & 0xFF]
            ^ tables[4, c >> 24]
            ^ tables[3, d & 0xFF]
            ^ tables[2, (d >> 8) & 0xFF]
            ^ tables[1, (d >> 16) & 0xFF]
            ^ tables[0, d >> 24]
        )
    last = np.uint32(w[WORDS_PER_PACKET - 1])  # octets 96, 97 (then the CRC itself in 98, 99)
    return tables[1, (last ^ (crc >> 8)) & 0xFF] ^ tables[0, ((last >> 8) ^ crc) & 0xFF]


@_jit
def _all_in_range(w, word_low, word_high, word_nan_ok):
    """Branch-free: every checked payload word inside its field's range (NaN only where allowed)."""
    ok = True
    for j in range(word_low.shape[0]):
        value = np.uint32(_bswap32(np.uint32(w[_FIRST_CHECKED_WORD + j]))).view(np.float32)
        ok &= ((value >= word_low[j]) & (value <= word_high[j])) | (word_nan_ok[j] & (value != value))
    return ok


@_jit
def _first_range_failure(w, range_first_word, range_words, range_low, range_high, range_nan_ok):
    """The check code of the first field (in VALUE_RANGES order) with a value outside its range."""
    for k in range(range_first_word.shape[0]):
        for j in range(range_first_word[k], range_first_word[k] + range_words[k]):
            value = np.uint32(_bswap32(np.uint32(w[j]))).view(np.float32)
            inside = value >= range_low[k] and value <= range_high[k]  # False for NaN
            if not inside and not (range_nan_ok[k] and np.isnan(value)):
                return CODE_FIRST_RANGE + k
    return CODE_OK


@_jit
def _validate(
    words,
    check_window,
    window_start,
    window_end,
    tables,
    range_first_word,
    range_words,
    range_low,
    range_high,
    range_nan_ok,
    word_low,
    word_high,
    word_nan_ok,
    code,
    apid,
    sequence_count,
    times,
    rows,
):
    """Check every packet; with ``rows.satellite_id`` >= 0, also write the accepted packets of that
    satellite as rows (see ``_RowOutput``) while they are in the CPU cache. Returns the number of rows
    written, the (min, max) of their times in µs and the number of accepted packets of other APIDs."""
    n = words.shape[0]
    k = rows.start
    low = np.iinfo(np.int64).max
    high = np.iinfo(np.int64).min
    strays = 0
    n_floats = rows.float_words.shape[0]
    for i in range(n):
        w = words[i]
        head = np.uint32(w[0])  # octets 0..3: packet id word, sequence control word
        word0 = ((head & 0xFF) << 8) | ((head >> 8) & 0xFF)
        word1 = ((head >> 8) & 0xFF00) | ((head >> 24) & 0xFF)
        packet_apid = word0 & 0x07FF
        apid[i] = packet_apid
        sequence_count[i] = word1 & 0x3FFF
        coarse = _bswap32(((np.uint32(w[1]) >> 16) & 0xFFFF) | ((np.uint32(w[2]) & 0xFFFF) << 16))  # 6..9
        fine = _bswap32(np.uint32(w[2])) & 0xFFFF  # octets 10..11
        t = np.float64(np.int64(coarse) - fmt.UNIX_EPOCH_IN_CCSDS_SECONDS) + np.float64(fine) / 65536.0
        times[i] = t
        stored_crc = _bswap32(np.uint32(w[WORDS_PER_PACKET - 1])) & 0xFFFF
        result = CODE_OK
        if _crc16(w, tables) != stored_crc:
            result = CODE_CRC
        elif (word1 >> 14) != fmt.SEQUENCE_FLAGS_UNSEGMENTED:
            result = CODE_SEQUENCE_FLAGS
        elif packet_apid < fmt.MIN_APID or packet_apid > fmt.MAX_APID:
            result = CODE_APID
        elif check_window and (t < window_start or t >= window_end):
            result = CODE_TIMESTAMP
        elif not _all_in_range(w, word_low, word_high, word_nan_ok):
            result = _first_range_failure(
                w, range_first_word, range_words, range_low, range_high, range_nan_ok
            )
        code[i] = result
        if result != CODE_OK:
            continue
        if packet_apid != rows.satellite_id:
            strays += 1
            continue
        us = np.int64(np.rint(t * 1e6))  # numpy's round: half to even
        low = min(low, us)
        high = max(high, us)
        source = rows.source_index[i]
        rows.packet[k - rows.start] = i
        rows.key[k - rows.start] = (us - rows.key_base_us) * fmt.SEQUENCE_COUNT_MODULO + (word1 & 0x3FFF)
        rows.satellite[k] = packet_apid
        rows.sequence[k] = word1 & 0x3FFF
        rows.observed_us[k] = us
        rows.asteroid[k] = _bswap32(np.uint32(w[rows.asteroid_word]))
        for f in range(n_floats):
            rows.floats[f, k] = _bswap32(np.uint32(w[rows.float_words[f]]))
        rows.quality[k] = _bswap32(np.uint32(w[rows.quality_word])) >> 16
        rows.source[k] = rows.name_base + source
        rows.offset[k] = rows.offsets[i]
        rows.received_us[k] = rows.received_us_by_file[source]
        k += 1
    return k - rows.start, low, high, strays


def validate(
    packets: np.ndarray, window_start: float | None, window_end: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check code (see CODE_*), APID, sequence count and UNIX observation time of every packet.

    Same results as ``decode.validate_packets`` plus the header fields it would decode separately.
    """
    words = packet_words(packets)
    n = len(words)
    code = np.empty(n, dtype=np.uint8)
    apid = np.empty(n, dtype=np.int32)
    sequence_count = np.empty(n, dtype=np.int32)
    times = np.empty(n, dtype=np.float64)
    check_window = window_start is not None and window_end is not None
    _validate(
        words,
        check_window,
        float(window_start) if check_window else 0.0,
        float(window_end) if check_window else 0.0,
        CRC16_SLICING_16,
        _RANGE_FIRST_WORD,
        _RANGE_WORDS,
        _RANGE_LOW,
        _RANGE_HIGH,
        _RANGE_NAN_OK,
        _WORD_LOW,
        _WORD_HIGH,
        _WORD_NAN_OK,
        code,
        apid,
        sequence_count,
        times,
        _NO_ROWS,
    )
    return code, apid, sequence_count, times


@_jit
def _crc16_rows(words, tables, out):
    for i in range(words.shape[0]):
        out[i] = _crc16(words[i], tables)


def crc16_packets(packets: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE over octets 0..97 of each packet (what ``crc16_ccitt(rows[:, :98])`` computes)."""
    words = packet_words(packets)
    out = np.empty(len(words), dtype=np.uint16)
    _crc16_rows(words, CRC16_SLICING_16, out)
    return out


@_jit
def _extract(words, index, float_words, asteroid_word, quality_word, asteroid_id, floats, quality_flags):
    n_floats = float_words.shape[0]
    for k in range(index.shape[0]):
        w = words[index[k]]
        asteroid_id[k] = _bswap32(np.uint32(w[asteroid_word]))
        for f in range(n_floats):
            floats[f, k] = _bswap32(np.uint32(w[float_words[f]]))
        quality_flags[k] = _bswap32(np.uint32(w[quality_word])) >> 16


def extract(packets: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Payload columns of the packets at ``index``, native byte order, each column contiguous.

    Returns ``asteroid_id`` (int64), the float32 columns as rows of one ``(20, m)`` array in the
    observation table's order (``SCALAR_FLOAT_FIELDS`` then reflectance bands 0..11) and
    ``quality_flags`` (int32).
    """
    words = packet_words(packets)
    index = np.asarray(index, dtype=np.int64)
    m = len(index)
    asteroid_id = np.empty(m, dtype=np.int64)
    floats = np.empty((len(_FLOAT_COLUMN_WORDS), m), dtype=np.uint32)
    quality_flags = np.empty(m, dtype=np.int32)
    _extract(
        words, index, _FLOAT_COLUMN_WORDS, _ASTEROID_WORD, _QUALITY_WORD, asteroid_id, floats, quality_flags
    )
    return asteroid_id, floats.view(np.float32), quality_flags


# --- framing -------------------------------------------------------------------------------------------

GAP_UNFRAMED = 0
GAP_TRUNCATED = 1
_HEADER_FIRST_OCTET = (fmt.PACKET_VERSION << 5) | (fmt.PACKET_TYPE_TELEMETRY << 4) | (1 << 3)
_LENGTH_HIGH, _LENGTH_LOW = fmt.DATA_LENGTH_FIELD >> 8, fmt.DATA_LENGTH_FIELD & 0xFF
RESYNC_CANDIDATES = 64  # header candidates tried for a good CRC before falling back to the first


@_jit
def _is_candidate(buf, offset):
    """A well-formed primary header of our packet size starts here, with a whole packet left in the file."""
    return (
        offset + fmt.PACKET_SIZE <= buf.shape[0]
        and (buf[offset] & 0xF8) == _HEADER_FIRST_OCTET
        and buf[offset + 4] == _LENGTH_HIGH
        and buf[offset + 5] == _LENGTH_LOW
    )


@_jit
def _crc_ok_at(buf, offset, tables):
    """The packet at ``offset`` (any alignment, wholly inside ``buf``) has a matching CRC."""
    crc = np.uint32(0xFFFF)
    for j in range(offset, offset + fmt.CRC_OFFSET - 2, 16):
        crc = (
            tables[15, (buf[j] ^ (crc >> 8)) & 0xFF]
            ^ tables[14, (buf[j + 1] ^ crc) & 0xFF]
            ^ tables[13, buf[j + 2]]
            ^ tables[12, buf[j + 3]]
            ^ tables[11, buf[j + 4]]
            ^ tables[10, buf[j + 5]]
            ^ tables[9, buf[j + 6]]
            ^ tables[8, buf[j + 7]]
            ^ tables[7, buf[j + 8]]
            ^ tables[6, buf[j + 9]]
            ^ tables[5, buf[j + 10]]
            ^ tables[4, buf[j + 11]]
            ^ tables[3, buf[j + 12]]
            ^ tables[2, buf[j + 13]]
            ^ tables[1, buf[j + 14]]
            ^ tables[0, buf[j + 15]]
        )
    j = offset + fmt.CRC_OFFSET - 2
    crc = tables[1, (buf[j] ^ (crc >> 8)) & 0xFF] ^ tables[0, (buf[j + 1] ^ crc) & 0xFF]
    stored = (np.uint32(buf[offset + fmt.CRC_OFFSET]) << 8) | np.uint32(buf[offset + fmt.CRC_OFFSET + 1])
    return crc == stored


@_jit
def _resync(buf, after, before, tables):
    """(first candidate in (after, before), first of the next RESYNC_CANDIDATES there with a good CRC).

    -1 where there is none. Scans forward from ``after`` only as far as it needs to.
    """
    first = -1
    tried = 0
    offset = after + 1
    while offset < before and tried < RESYNC_CANDIDATES:
        if _is_candidate(buf, offset):
            if first < 0:
                first = offset
            tried += 1
            if _crc_ok_at(buf, offset, tables):
                return first, offset
        offset += 1
    return first, -1


@_jit
def _frame(buf, tables, starts, gap_offset, gap_length, gap_reason):
    """The framing of ``decode.frame_packets_reference``, scanning for headers only where it must."""
    n = buf.shape[0]
    size = fmt.PACKET_SIZE
    n_starts = 0
    n_gaps = 0
    pos = 0
    while pos < n:
        if _is_candidate(buf, pos):
            end = pos + size
            while _is_candidate(buf, end):
                end += size
            last = end - size
            if end < n and not _crc_ok_at(buf, last, tables):
                # The run's last packet fails its CRC and the run breaks right after it: was it cut short?
                _, resume = _resync(buf, last, end, tables)
                if resume >= 0:
                    for offset in range(pos, last, size):
                        starts[n_starts] = offset
                        n_starts += 1
                    gap_offset[n_gaps] = last
                    gap_length[n_gaps] = resume - last
                    gap_reason[n_gaps] = GAP_TRUNCATED
                    n_gaps += 1
                    pos = resume
                    continue
            for offset in range(pos, end, size):
                starts[n_starts] = offset
                n_starts += 1
            pos = end
            continue
        first, good = _resync(buf, pos, n, tables)
        nxt = n if first < 0 else (good if good >= 0 else first)
        length = nxt - pos
        truncated = length < size and n - pos >= 6 and (buf[pos] & 0xF8) == _HEADER_FIRST_OCTET
        gap_offset[n_gaps] = pos
        gap_length[n_gaps] = length
        gap_reason[n_gaps] = GAP_TRUNCATED if truncated else GAP_UNFRAMED
        n_gaps += 1
        pos = nxt
    return n_starts, n_gaps


def frame(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Packet start offsets and quarantined runs (offsets, lengths, GAP_* reasons) of one file."""
    buf = np.ascontiguousarray(buf, dtype=np.uint8)
    n = len(buf)
    starts = np.empty(n // fmt.PACKET_SIZE, dtype=np.int64)
    capacity = n // fmt.PACKET_SIZE + 2
    gap_offset = np.empty(capacity, dtype=np.int64)
    gap_length = np.empty(capacity, dtype=np.int64)
    gap_reason = np.empty(capacity, dtype=np.uint8)
    n_starts, n_gaps = _frame(buf, CRC16_SLICING_16, starts, gap_offset, gap_length, gap_reason)
    return starts[:n_starts], gap_offset[:n_gaps], gap_length[:n_gaps], gap_reason[:n_gaps]


# --- one satellite's accepted packets: duplicates, losses, latency and columns in one pass ----------------


@_jit
def _duplicates_and_losses(sequence_count, sorted_key, order, duplicate):
    """Mark repeats of a (time, sequence count) key, keeping the first in arrival order (``order`` is a
    stable sort of the keys); count the sequence-count gaps between consecutive kept packets."""
    lost = 0
    duplicates = 0
    previous = 0
    for r in range(order.shape[0]):
        i = order[r]
        if r > 0 and sorted_key[r] == sorted_key[r - 1]:
            duplicate[i] = True
            duplicates += 1
            continue
        duplicate[i] = False
        if r > 0:
            step = (sequence_count[i] - previous) % fmt.SEQUENCE_COUNT_MODULO - 1
            if step > 0:
                lost += step
        previous = sequence_count[i]
    return duplicates, lost


@_jit
def _compact_rows(
    start,
    m,
    duplicate,
    row_packet,
    times,
    name_base,
    received_by_file,
    latency_bin_s,
    latency_histogram,
    latency_range,
    satellite,
    sequence,
    observed_us,
    asteroid,
    floats,
    quality,
    source,
    offset,
    received_us,
):
    """Drop the duplicate rows among the ``m`` rows written from ``start`` on (shifting the rest up, in
    order) and bin the receipt latency of the kept ones. Returns the number kept."""
    bins = latency_histogram.shape[0]
    low = latency_range[0]
    high = latency_range[1]
    k = start
    for r in range(m):
        if duplicate[r]:
            continue
        row = start + r
        if row != k:
            satellite[k] = satellite[row]
            sequence[k] = sequence[row]
            observed_us[k] = observed_us[row]
            asteroid[k] = asteroid[row]
            for f in range(floats.shape[0]):
                floats[f, k] = floats[f, row]
            quality[k] = quality[row]
            source[k] = source[row]
            offset[k] = offset[row]
            received_us[k] = received_us[row]
        latency = received_by_file[source[k] - name_base] - times[row_packet[r]]
        if np.isfinite(latency):
            # floor(latency / bin) equals numpy's latency // bin here: latencies are multiples of 2**-16 s.
            b = np.int64(np.floor(latency / latency_bin_s))
            latency_histogram[min(max(b, 0), bins - 1)] += 1
            low = min(low, latency)
            high = max(high, latency)
        k += 1
    latency_range[0] = low
    latency_range[1] = high
    return k - start


class RowBuffer:
    """Reusable columns of the observation table for up to ``capacity`` rows, filled satellite by
    satellite (``satellite_rows``) and handed out as zero-copy views (``columns``) when full.

    Reusing one buffer keeps the hot loop off freshly mapped memory (page faults) and gives every
    written Parquet row group one contiguous chunk per column with one dictionary of file names.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.rows = 0
        self.file_names: list[str] = []
        self.satellite_id = np.empty(capacity, dtype=np.int32)
        self.sequence_count = np.empty(capacity, dtype=np.int32)
        self.observed_us = np.empty(capacity, dtype=np.int64)
        self.asteroid_id = np.empty(capacity, dtype=np.int64)
        self.floats = np.empty((len(_FLOAT_COLUMN_WORDS), capacity), dtype=np.uint32)
        self.quality_flags = np.empty(capacity, dtype=np.int32)
        self.source_file = np.empty(capacity, dtype=np.int32)
        self.file_offset = np.empty(capacity, dtype=np.int64)
        self.received_us = np.empty(capacity, dtype=np.int64)

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


class _RowOutput(NamedTuple):
    """Where ``_validate`` writes the accepted packets of one satellite (numba takes a namedtuple of
    arrays as one argument)."""

    satellite_id: int  # -1: write no rows
    start: int  # first row to write
    name_base: int  # added to the batch's file index to index the RowBuffer's file names
    source_index: np.ndarray  # per packet: its file in the batch
    offsets: np.ndarray  # per packet: its offset in its file
    received_us_by_file: np.ndarray
    float_words: np.ndarray
    asteroid_word: int
    quality_word: int
    packet: np.ndarray  # per row written: the packet's position in the batch
    key: np.ndarray  # per row written: (µs since key_base_us) * 16384 + sequence count
    key_base_us: int
    satellite: np.ndarray
    sequence: np.ndarray
    observed_us: np.ndarray
    asteroid: np.ndarray
    floats: np.ndarray
    quality: np.ndarray
    source: np.ndarray
    offset: np.ndarray
    received_us: np.ndarray


def _no_rows() -> _RowOutput:
    empty = RowBuffer(0)
    no_int64 = np.zeros(0, dtype=np.int64)
    return _RowOutput(
        -1, 0, 0, np.zeros(0, dtype=np.int32), no_int64, no_int64, _FLOAT_COLUMN_WORDS, 0, 0, no_int64,
        no_int64, 0, *empty.arrays(),
    )  # fmt: skip


_NO_ROWS = _no_rows()


def satellite_rows(
    packets: np.ndarray,
    source_index: np.ndarray,
    offsets: np.ndarray,
    window_start: float,
    window_end: float,
    satellite_id: int,
    file_names: list[str],
    received_by_file: np.ndarray,
    latency_bin_s: float,
    latency_histogram: np.ndarray,
    latency_range: np.ndarray,
    out: RowBuffer,
    make_room: Callable[[int], RowBuffer],
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int, int, int, int]:
    """Validate the framed packets of one satellite's files and append its accepted ones, de-duplicated,
    to a RowBuffer, in one pass over the packets (``_validate`` writes the rows) plus one over the rows.

    Checks every packet as ``validate`` does. Keeps the packets with check code 0 and APID
    ``satellite_id``; among those with the same (observation time in µs, sequence count) the first in
    arrival order is kept (what ``decode.duplicate_mask`` does per satellite). Counts lost packets as
    ``decode.lost_packet_counts`` (sequence-count gaps in time order). Adds each kept packet's receipt
    latency (``received_by_file[file] - time``, when finite) to ``latency_histogram`` (bins of
    ``latency_bin_s``, clipped at both ends) and widens ``latency_range`` = [min, max] in place.

    ``make_room(rows)`` is called when ``out`` lacks room for every packet of the batch; it returns the
    buffer to fill (``out`` itself after it was written out and cleared, or a larger one).
    Returns ``validate``'s four arrays, then rows kept, duplicates, lost packets and accepted packets of
    other satellites.
    """
    words = packet_words(packets)
    n = len(words)
    if out.rows + n > out.capacity:
        out = make_room(n)
    start = out.rows
    name_base = len(out.file_names)
    received_by_file = np.asarray(received_by_file, dtype=np.float64)
    code = np.empty(n, dtype=np.uint8)
    apid = np.empty(n, dtype=np.int32)
    sequence_count = np.empty(n, dtype=np.int32)
    times = np.empty(n, dtype=np.float64)
    row_packet = np.empty(n, dtype=np.int64)
    key = np.empty(n, dtype=np.int64)
    # Accepted times lie in the window, so µs since its start packed with the 14-bit sequence count fit
    # an int64 unless the window spans more than 2**48 µs (8.9 years): then a lexsort is used instead.
    key_base_us = int(np.rint(window_start * 1e6))
    rows = _RowOutput(
        satellite_id,
        start,
        name_base,
        np.ascontiguousarray(source_index, dtype=np.int32),
        np.ascontiguousarray(offsets, dtype=np.int64),
        np.round(received_by_file * 1e6).astype(np.int64),
        _FLOAT_COLUMN_WORDS,
        _ASTEROID_WORD,
        _QUALITY_WORD,
        row_packet,
        key,
        key_base_us,
        *out.arrays(),
    )
    m, _lowest_us, highest_us, strays = _validate(
        words,
        True,
        float(window_start),
        float(window_end),
        CRC16_SLICING_16,
        _RANGE_FIRST_WORD,
        _RANGE_WORDS,
        _RANGE_LOW,
        _RANGE_HIGH,
        _RANGE_NAN_OK,
        _WORD_LOW,
        _WORD_HIGH,
        _WORD_NAN_OK,
        code,
        apid,
        sequence_count,
        times,
        rows,
    )
    checked = (code, apid, sequence_count, times)
    if m == 0:
        return checked, 0, 0, 0, strays
    sequence = out.sequence_count[start : start + m].astype(np.int64)
    if highest_us - key_base_us < 1 << (63 - 14):
        # The packets of a downlink arrive nearly in time order, which numpy's stable sort (timsort)
        # exploits.
        key = key[:m]
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
    else:  # times too far apart for one int64 key (never within a day): a dense rank instead
        observed_us = out.observed_us[start : start + m]
        order = np.lexsort((sequence, observed_us))
        change = (np.diff(observed_us[order]) != 0) | (np.diff(sequence[order]) != 0)
        sorted_key = np.concatenate(([0], np.cumsum(change))).astype(np.int64)
    duplicate = np.empty(m, dtype=np.bool_)
    duplicates, lost = _duplicates_and_losses(sequence, sorted_key, order, duplicate)
    kept = _compact_rows(
        start,
        m,
        duplicate,
        row_packet,
        times,
        name_base,
        received_by_file,
        float(latency_bin_s),
        latency_histogram,
        latency_range,
        *out.arrays(),
    )
    out.rows += kept
    out.file_names.extend(file_names)
    return checked, kept, duplicates, lost, strays


def warm_up() -> None:
    """Compile (or load from the cache) every kernel for the array types the ingest passes."""
    from astromined.telemetry.encode import encode_packets

    payload = np.zeros(1, dtype=fmt.PAYLOAD_DTYPE)
    for field, (low, _) in fmt.VALUE_RANGES.items():
        payload[field] = low
    writable = encode_packets(np.array([1]), np.array([0]), np.array([0.5]), payload)
    for packets in (writable, np.frombuffer(writable.tobytes(), dtype=fmt.PACKET_DTYPE)):
        _warm_up(packets)


def _warm_up(packets: np.ndarray) -> None:
    assert validate(packets, 0.0, 1.0)[0][0] == CODE_OK
    extract(packets, np.zeros(1, dtype=np.int64))
    crc16_packets(packets)
    frame(np.frombuffer(packets.tobytes(), dtype=np.uint8))
    satellite_rows(
        packets,
        np.zeros(1, np.int32),
        np.zeros(1, np.int64),
        0.0,
        1.0,
        1,
        ["warm-up"],
        np.ones(1),
        10.0,
        np.zeros(2, np.int64),
        np.array([np.inf, -np.inf]),
        RowBuffer(1),
        RowBuffer,
    )
