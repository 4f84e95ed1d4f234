"""CRC-16/CCITT-FALSE of packets, compiled (numba): what ``packet_format.crc16_ccitt`` computes (the
numpy specification), one packet at a time.

Two ways: table slicing (``crc16_slicing``, 16 independent lookups per 16 octets) everywhere, and
carry-less multiplication (PCLMULQDQ, ``crc16_clmul``) where the CPU has it; ``crc16`` is the faster one
the CPU allows and what the packet checks (``kernels``) call. ``crc_ok_at`` checks a packet at any byte
offset of a file (framing). tests/unit/telemetry/test_kernels.py checks them against the numpy CRC.
"""

from __future__ import annotations

import platform

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from astromined.telemetry import packet_format as fmt
from astromined.telemetry.jit import WORDS_PER_PACKET, bswap32, jit, packet_words


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


@jit
def crc16_slicing(w, tables):
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


# --- CRC by carry-less multiplication ------------------------------------------------------------------
#
# The CRC is linear over GF(2) and every packet has the same length, so it need not be a chain of table
# steps. With the 98 checked octets as M(x) = sum_j C_j(x) x^(784 - 64 (j + 1)) + T(x) (twelve 64-bit
# big-endian chunks C_j, then the 16-bit tail T) and P(x) the CRC polynomial,
#     crc = (M(x) x^16 + 0xFFFF x^784) mod P = (R(x) x^16 mod P) ^ INIT,
#     R(x) = sum_j C_j(x) K_j(x) + T(x),  K_j = x^(784 - 64 (j + 1)) mod P  (16 bits each),
# where INIT = 0xFFFF x^784 mod P is the initial register's share. Each C_j K_j is one PCLMULQDQ; R has
# at most 79 bits, and R(x) x^16 mod P is the zero-initialised CRC of R's ten octets: ten independent
# lookups in the slicing tables. 12 multiplications and 10 lookups instead of 98 lookups.

_CLMUL_CHUNKS = fmt.CRC_OFFSET // 8
assert fmt.CRC_OFFSET == 8 * _CLMUL_CHUNKS + 2, "the fold below expects 64-bit chunks and a 16-bit tail"


def _x_power_mod(exponent: int, polynomial: int = 0x1_1021) -> int:
    """x**exponent modulo the CRC polynomial (GF(2)), as the bits of a polynomial of degree < 16."""
    value = 1
    for _ in range(exponent):
        value <<= 1
        if value & 0x1_0000:
            value ^= polynomial
    return value


_CLMUL_FOLD = np.array(
    [_x_power_mod(8 * fmt.CRC_OFFSET - 64 * (j + 1)) for j in range(_CLMUL_CHUNKS)], dtype=np.uint64
)
_CLMUL_INIT = 0
for _bit in range(16):  # 0xFFFF x^784 mod P, one set bit at a time
    _CLMUL_INIT ^= _x_power_mod(8 * fmt.CRC_OFFSET + _bit)


def _clmul_supported() -> bool:
    """PCLMULQDQ exists on the CPU numba compiles for (the host unless NUMBA_CPU_NAME says otherwise)."""
    if numba.config.DISABLE_JIT or platform.machine().lower() not in ("x86_64", "amd64"):
        return False  # (without the JIT the kernels run as Python, where the LLVM intrinsic does not exist)
    if numba.config.CPU_FEATURES is not None:
        return "+pclmul" in numba.config.CPU_FEATURES.split(",")
    if numba.config.CPU_NAME not in (None, "host"):
        return False
    return bool(llvm.get_host_cpu_features().get("pclmul", False))


CLMUL_AVAILABLE = _clmul_supported()


@intrinsic
def _clmul(typingctx, a, b):
    """The 128-bit carry-less product of two uint64 (``llvm.x86.pclmulqdq``), as (low, high) words."""
    signature = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        vector = ir.VectorType(i64, 2)
        undefined = ir.Constant(vector, ir.Undefined)
        left = builder.insert_element(undefined, args[0], ir.Constant(i32, 0))
        right = builder.insert_element(undefined, args[1], ir.Constant(i32, 0))
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector, [vector, vector, ir.IntType(8)]), "llvm.x86.pclmulqdq"
        )
        product = builder.call(function, [left, right, ir.Constant(ir.IntType(8), 0)])
        low = builder.extract_element(product, ir.Constant(i32, 0))
        high = builder.extract_element(product, ir.Constant(i32, 1))
        return context.make_tuple(builder, signature.return_type, [low, high])

    return signature, codegen


@jit
def _bswap64(first, second):
    """Two consecutive little-endian words as the big-endian 64-bit number their eight octets spell."""
    return (np.uint64(bswap32(first)) << np.uint64(32)) | np.uint64(bswap32(second))


@jit
def crc16_clmul(w, tables):
    """``crc16_slicing`` by carry-less multiplication (see above); only where CLMUL_AVAILABLE."""
    low = np.uint64(0)
    high = np.uint64(0)
    for j in range(_CLMUL_CHUNKS):
        product_low, product_high = _clmul(
            _bswap64(np.uint32(w[2 * j]), np.uint32(w[2 * j + 1])), _CLMUL_FOLD[j]
        )
        low ^= product_low
        high ^= product_high
    low ^= np.uint64(bswap32(np.uint32(w[WORDS_PER_PACKET - 1])) >> 16)  # the tail: octets 96, 97
    byte = np.uint64(0xFF)
    crc = (
        tables[9, high >> np.uint64(8)]
        ^ tables[8, high & byte]
        ^ tables[7, low >> np.uint64(56)]
        ^ tables[6, (low >> np.uint64(48)) & byte]
        ^ tables[5, (low >> np.uint64(40)) & byte]
        ^ tables[4, (low >> np.uint64(32)) & byte]
        ^ tables[3, (low >> np.uint64(24)) & byte]
        ^ tables[2, (low >> np.uint64(16)) & byte]
        ^ tables[1, (low >> np.uint64(8)) & byte]
        ^ tables[0, low & byte]
    )
    return crc ^ np.uint16(_CLMUL_INIT)


# The packet checks use the faster one the CPU allows (decided at import; numba's on-disk cache keys its
# code by CPU too).
crc16 = crc16_clmul if CLMUL_AVAILABLE else crc16_slicing


@jit
def _crc16_rows_slicing(words, tables, out):
    for i in range(words.shape[0]):
        out[i] = crc16_slicing(words[i], tables)


@jit
def _crc16_rows_clmul(words, tables, out):
    for i in range(words.shape[0]):
        out[i] = crc16_clmul(words[i], tables)


def crc16_packets(packets: np.ndarray, clmul: bool | None = None) -> np.ndarray:
    """CRC-16/CCITT-FALSE over octets 0..97 of each packet (what ``crc16_ccitt(rows[:, :98])`` computes).

    ``clmul``: by carry-less multiplication (True; needs CLMUL_AVAILABLE), by table slicing (False), or
    whichever the packet checks use (None).
    """
    words = packet_words(packets)
    out = np.empty(len(words), dtype=np.uint16)
    if clmul is None:
        clmul = CLMUL_AVAILABLE
    if clmul and not CLMUL_AVAILABLE:
        raise RuntimeError("carry-less multiplication (PCLMULQDQ) is not available on this CPU")
    (_crc16_rows_clmul if clmul else _crc16_rows_slicing)(words, CRC16_SLICING_16, out)
    return out


@jit
def crc_ok_at(buf, offset, tables):
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
