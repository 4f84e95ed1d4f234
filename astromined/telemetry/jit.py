"""What the compiled telemetry kernels (``kernels``, ``crc``) share: the cached ``jit`` decorator and
packets as words.

Packets are read as ``(n, 25)`` little-endian ``uint32`` words (``packet_words``); a big-endian field of
the wire format is the byte-swapped word (``bswap32``) or, for 16-bit fields, two octets of a word.

Compiled code is cached on disk (``jit``), keyed by the file that defines each kernel: numba does not see
changes to a kernel of *another* module that a cached kernel calls (it compiled a copy in). After editing
this module, ``crc.py`` or ``packet_format.py``, delete ``astromined/telemetry/__pycache__/*.nb[ic]`` (or
touch ``kernels.py``) so that the kernels calling them are compiled again.
"""

from __future__ import annotations

import numba
import numpy as np

from astromined.telemetry import packet_format as fmt

WORDS_PER_PACKET = fmt.PACKET_SIZE // 4
assert fmt.PACKET_SIZE % 4 == 0 and fmt.CRC_OFFSET == 4 * (WORDS_PER_PACKET - 1) + 2


def payload_word(field: str) -> int:
    """Index of the 32-bit word of a packet where a payload field starts."""
    offset = fmt.PACKET_DTYPE.fields["payload"][1] + fmt.PAYLOAD_DTYPE.fields[field][1]
    assert offset % 4 == 0, field
    return offset // 4


def packet_words(packets: np.ndarray) -> np.ndarray:
    """A C-contiguous array of packets (PACKET_DTYPE or ``(n, 100)`` uint8) as ``(n, 25)`` '<u4' words."""
    rows = np.ascontiguousarray(packets).view(np.uint8).reshape(-1, fmt.PACKET_SIZE)
    return rows.view("<u4")


def jit(function):
    """``numba.njit`` with the compiled code cached on disk where numba finds a writable place (next to
    this module, else NUMBA_CACHE_DIR or the user's cache directory); without one (a read-only image),
    compiled once per process instead of failing at import."""
    try:
        return numba.njit(nogil=True, cache=True, boundscheck=False)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, cache=False, boundscheck=False)(function)


@jit
def bswap32(word):
    """The low 32 bits of ``word`` with their octets reversed (LLVM compiles this to one instruction)."""
    return np.uint32(
        ((word & 0xFF) << 24) | ((word & 0xFF00) << 8) | ((word >> 8) & 0xFF00) | ((word >> 24) & 0xFF)
    )
