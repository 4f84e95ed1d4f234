"""Compiled kernels (numba) for the ingest hot path: one pass per packet instead of ~100 numpy passes.

The numpy implementations stay the specification: ``packet_format.crc16_ccitt`` (CRC),
``reference_decode.frame_packets_reference`` (framing), ``reference_decode.validate_packets`` (check
codes), ``reference_decode.observation_columns_reference`` (columns), ``decode.duplicate_mask`` and
``decode.lost_packet_counts``. tests/unit/telemetry/test_kernels.py checks these kernels against them
with hypothesis, corrupt and out-of-range packets included. What the kernels buy (BENCHMARKS.md): the
numpy CRC made 49 gather-and-XOR passes over the batch, the column extraction one strided byte-swapping
copy per field, duplicates and losses two three-key lexsorts; here each stage reads a packet once.

Here: the packet checks (``validate``), column extraction (``extract``), framing (``frame``) and one
satellite's rows (``satellite_rows``: checks, duplicates, losses, latency, columns). Elsewhere: the CRC
(``crc.py``: table slicing, or carry-less multiplication where the CPU has it), the row buffer whose
arrays the hot loops write without evicting each other from the cache (``row_buffer.py``), and the cached
``jit`` decorator with the packets-as-words view (``jit.py``, which says how the disk cache is keyed).

Compiled code is cached on disk (``jit``), so only the first process after an install pays the
compilation (~15 s of CPU); later processes load it in ~1 s. ``warm_up`` does either eagerly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from astromined.telemetry import packet_format as fmt
from astromined.telemetry.crc import CRC16_SLICING_16, crc16, crc16_packets, crc_ok_at
from astromined.telemetry.jit import WORDS_PER_PACKET, bswap32, jit, packet_words, payload_word
from astromined.telemetry.row_buffer import FLOAT_COLUMNS, SCALAR_FLOAT_FIELDS, RowBuffer

# Check codes, in the order the checks run (the first failing check names the quarantine reason).
# decode.py maps them to reasons and details and asserts it uses the same order.
CODE_OK = 0
CODE_CRC = 1
CODE_SEQUENCE_FLAGS = 2
CODE_APID = 3
CODE_TIMESTAMP = 4
CODE_FIRST_RANGE = 5  # then one code per field of VALUE_RANGES, in its order


RANGE_FIELDS = list(fmt.VALUE_RANGES)
_RANGE_FIRST_WORD = np.array([payload_word(f) for f in RANGE_FIELDS], dtype=np.int64)
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
# What ``_validate`` takes after the CRC tables: the per-field ranges (to name the failing field), then
# the per-word ones (for the fast test of a whole packet).
_RANGE_CHECKS = (
    _RANGE_FIRST_WORD, _RANGE_WORDS, _RANGE_LOW, _RANGE_HIGH, _RANGE_NAN_OK,
    _WORD_LOW, _WORD_HIGH, _WORD_NAN_OK,
)  # fmt: skip


_FLOAT_COLUMN_WORDS = np.array(
    [payload_word(f) for f in SCALAR_FLOAT_FIELDS]
    + [payload_word("reflectance") + band for band in range(fmt.N_BANDS)],
    dtype=np.int64,
)
assert len(_FLOAT_COLUMN_WORDS) == FLOAT_COLUMNS
_ASTEROID_WORD = payload_word("asteroid_id")
_QUALITY_WORD = payload_word("quality_flags")
assert fmt.PAYLOAD_DTYPE.fields["asteroid_id"][0] == np.dtype(">u4")
assert fmt.PACKET_DTYPE.fields["payload"][1] + fmt.PAYLOAD_DTYPE.fields["quality_flags"][1] == 96


@jit
def _all_in_range(w, word_low, word_high, word_nan_ok):
    """Branch-free: every checked payload word inside its field's range (NaN only where allowed)."""
    ok = True
    for j in range(word_low.shape[0]):
        value = np.uint32(bswap32(np.uint32(w[_FIRST_CHECKED_WORD + j]))).view(np.float32)
        ok &= ((value >= word_low[j]) & (value <= word_high[j])) | (word_nan_ok[j] & (value != value))
    return ok


@jit
def _first_range_failure(w, range_first_word, range_words, range_low, range_high, range_nan_ok):
    """The check code of the first field (in VALUE_RANGES order) with a value outside its range."""
    for k in range(range_first_word.shape[0]):
        for j in range(range_first_word[k], range_first_word[k] + range_words[k]):
            value = np.uint32(bswap32(np.uint32(w[j]))).view(np.float32)
            inside = value >= range_low[k] and value <= range_high[k]  # False for NaN
            if not inside and not (range_nan_ok[k] and np.isnan(value)):
                return CODE_FIRST_RANGE + k
    return CODE_OK


@jit
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
    satellite_id,
    key_base_us,
    row_packet,
    key,
):
    """Check every packet. With ``satellite_id`` >= 0, also list the accepted packets of that satellite
    (``row_packet``) with their sort keys: (µs since ``key_base_us``) * 16384 + sequence count.

    Returns how many were listed, the largest of their times in µs and the number of accepted packets
    of other APIDs. Their columns are written by a second pass (``_write_rows``) once the duplicates
    are known: two passes cost the same as one here, and no row is written only to be removed.
    """
    n = words.shape[0]
    m = 0
    high = np.iinfo(np.int64).min
    strays = 0
    for i in range(n):
        w = words[i]
        head = np.uint32(w[0])  # octets 0..3: packet id word, sequence control word
        word0 = ((head & 0xFF) << 8) | ((head >> 8) & 0xFF)
        word1 = ((head >> 8) & 0xFF00) | ((head >> 24) & 0xFF)
        packet_apid = word0 & 0x07FF
        apid[i] = packet_apid
        sequence_count[i] = word1 & 0x3FFF
        coarse = bswap32(((np.uint32(w[1]) >> 16) & 0xFFFF) | ((np.uint32(w[2]) & 0xFFFF) << 16))  # 6..9
        fine = bswap32(np.uint32(w[2])) & 0xFFFF  # octets 10..11
        t = np.float64(np.int64(coarse) - fmt.UNIX_EPOCH_IN_CCSDS_SECONDS) + np.float64(fine) / 65536.0
        times[i] = t
        stored_crc = bswap32(np.uint32(w[WORDS_PER_PACKET - 1])) & 0xFFFF
        result = CODE_OK
        if crc16(w, tables) != stored_crc:
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
        if result != CODE_OK or satellite_id < 0:
            continue
        if packet_apid != satellite_id:
            strays += 1
            continue
        us = np.int64(np.rint(t * 1e6))  # numpy's round: half to even
        high = max(high, us)
        row_packet[m] = i
        key[m] = (us - key_base_us) * fmt.SEQUENCE_COUNT_MODULO + (word1 & 0x3FFF)
        m += 1
    return m, high, strays


_NO_INT64 = np.zeros(0, dtype=np.int64)


def validate(
    packets: np.ndarray, window_start: float | None, window_end: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check code (see CODE_*), APID, sequence count and UNIX observation time of every packet.

    Same results as ``reference_decode.validate_packets`` plus the header fields it would decode separately.
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
        *_RANGE_CHECKS,
        code,
        apid,
        sequence_count,
        times,
        -1,
        0,
        _NO_INT64,
        _NO_INT64,
    )
    return code, apid, sequence_count, times


@jit
def _extract(words, index, float_words, asteroid_word, quality_word, asteroid_id, floats, quality_flags):
    n_floats = float_words.shape[0]
    for k in range(index.shape[0]):
        w = words[index[k]]
        asteroid_id[k] = bswap32(np.uint32(w[asteroid_word]))
        for f in range(n_floats):
            floats[f, k] = bswap32(np.uint32(w[float_words[f]]))
        quality_flags[k] = bswap32(np.uint32(w[quality_word])) >> 16


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


@jit
def _is_candidate(buf, offset):
    """A well-formed primary header of our packet size starts here, with a whole packet left in the file."""
    return (
        offset + fmt.PACKET_SIZE <= buf.shape[0]
        and (buf[offset] & 0xF8) == _HEADER_FIRST_OCTET
        and buf[offset + 4] == _LENGTH_HIGH
        and buf[offset + 5] == _LENGTH_LOW
    )


@jit
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
            if crc_ok_at(buf, offset, tables):
                return first, offset
        offset += 1
    return first, -1


@jit
def _frame(buf, tables, starts, gap_offset, gap_length, gap_reason):
    """The framing of ``reference_decode.frame_packets_reference``, scanning for headers only where it
    must."""
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
            if end < n and not crc_ok_at(buf, last, tables):
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


# --- one satellite's accepted packets: duplicates, losses, latency and columns ----------------------------


@jit
def _duplicates_and_losses(sequence_count, row_packet, sorted_key, order, duplicate):
    """Mark repeats of a (time, sequence count) key, keeping the first in arrival order (``order`` is a
    stable sort of the keys of the listed packets); count the sequence-count gaps between consecutive
    kept packets."""
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
        sequence = sequence_count[row_packet[i]]
        if r > 0:
            step = (sequence - previous) % fmt.SEQUENCE_COUNT_MODULO - 1
            if step > 0:
                lost += step
        previous = sequence
    return duplicates, lost


@jit
def _write_rows(
    words,
    row_packet,
    duplicate,
    times,
    source_index,
    offsets,
    received_by_file,
    received_us_by_file,
    satellite_id,
    name_base,
    start,
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
    """Write the columns of the listed packets that are not duplicates as rows from ``start`` on, in
    arrival order, and bin their receipt latency. Returns the number of rows written."""
    bins = latency_histogram.shape[0]
    low = latency_range[0]
    high = latency_range[1]
    k = start
    for r in range(row_packet.shape[0]):
        if duplicate[r]:
            continue
        i = row_packet[r]
        w = words[i]
        file = source_index[i]
        t = times[i]
        head = np.uint32(w[0])
        satellite[k] = satellite_id
        sequence[k] = (((head >> 8) & 0xFF00) | ((head >> 24) & 0xFF)) & 0x3FFF
        observed_us[k] = np.int64(np.rint(t * 1e6))  # numpy's round: half to even
        asteroid[k] = bswap32(np.uint32(w[_ASTEROID_WORD]))
        for f in range(_FLOAT_COLUMN_WORDS.shape[0]):
            floats[f, k] = bswap32(np.uint32(w[_FLOAT_COLUMN_WORDS[f]]))
        quality[k] = bswap32(np.uint32(w[_QUALITY_WORD])) >> 16
        source[k] = name_base + file
        offset[k] = offsets[i]
        received_us[k] = received_us_by_file[file]
        latency = received_by_file[file] - t
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
    to a RowBuffer: one pass over the packets checks them and lists the satellite's accepted ones with
    their sort keys, a stable sort finds repeats and losses, a second pass writes the kept rows.

    Checks every packet as ``validate`` does. Keeps the packets with check code 0 and APID
    ``satellite_id``; among those with the same (observation time in µs, sequence count) the first in
    arrival order is kept (what ``decode.duplicate_mask`` does per satellite). Counts lost packets as
    ``decode.lost_packet_counts`` (sequence-count gaps in time order). Adds each kept packet's receipt
    latency (``received_by_file[file] - time``, when finite) to ``latency_histogram`` (bins of
    ``latency_bin_s``, clipped at both ends) and widens ``latency_range`` = [min, max] in place.

    ``make_room(rows)`` is called when ``out`` lacks room for every packet of the batch; it returns the
    buffer to fill (``out`` itself after it was written out and cleared, or a larger one).
    Returns ``validate``'s four arrays (views of the buffer's scratch space, valid until its next use),
    then rows kept, duplicates, lost packets and accepted packets of other satellites.
    """
    words = packet_words(packets)
    n = len(words)
    if out.rows + n > out.capacity:
        out = make_room(n)
    code, apid, sequence_count, times, row_packet, key, duplicate = (column[:n] for column in out.scratch)
    # Accepted times lie in the window, so µs since its start packed with the 14-bit sequence count fit
    # an int64 unless the window spans more than 2**48 µs (8.9 years): then a lexsort is used instead.
    key_base_us = int(np.rint(window_start * 1e6))
    m, highest_us, strays = _validate(
        words,
        True,
        float(window_start),
        float(window_end),
        CRC16_SLICING_16,
        *_RANGE_CHECKS,
        code,
        apid,
        sequence_count,
        times,
        satellite_id,
        key_base_us,
        row_packet,
        key,
    )
    checked = (code, apid, sequence_count, times)
    if m == 0:
        return checked, 0, 0, 0, strays
    row_packet, key, duplicate = row_packet[:m], key[:m], duplicate[:m]
    order, sorted_key = _sort_keys(key, highest_us - key_base_us, row_packet, times, sequence_count)
    duplicates, lost = _duplicates_and_losses(sequence_count, row_packet, sorted_key, order, duplicate)
    received_by_file = np.asarray(received_by_file, dtype=np.float64)
    kept = _write_rows(
        words,
        row_packet,
        duplicate,
        times,
        np.ascontiguousarray(source_index, dtype=np.int32),
        np.ascontiguousarray(offsets, dtype=np.int64),
        received_by_file,
        np.round(received_by_file * 1e6).astype(np.int64),
        satellite_id,
        len(out.file_names),
        out.rows,
        float(latency_bin_s),
        latency_histogram,
        latency_range,
        *out.arrays(),
    )
    out.rows += kept
    out.file_names.extend(file_names)
    return checked, kept, duplicates, lost, strays


def _sort_keys(
    key: np.ndarray, key_span_us: int, row_packet: np.ndarray, times: np.ndarray, sequence_count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A stable order of the listed packets by (time in µs, sequence count) and their keys in that order
    (equal keys: same time and count)."""
    if key_span_us < 1 << (63 - 14):
        # The packets of a downlink arrive nearly in time order, which numpy's stable sort (timsort)
        # exploits.
        order = np.argsort(key, kind="stable")
        return order, key[order]
    # times too far apart for one int64 key (never within a day): a dense rank instead
    observed_us = np.rint(times[row_packet] * 1e6).astype(np.int64)
    sequence = sequence_count[row_packet]
    order = np.lexsort((sequence, observed_us))
    change = (np.diff(observed_us[order]) != 0) | (np.diff(sequence[order]) != 0)
    return order, np.concatenate(([0], np.cumsum(change))).astype(np.int64)


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
