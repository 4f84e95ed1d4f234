"""Encoding observations into CCSDS packets (used by the fleet simulator and by tests)."""

from __future__ import annotations

import numpy as np

from astromined.telemetry import packet_format as fmt


def encode_packets(
    apid: np.ndarray,
    sequence_count: np.ndarray,
    unix_time: np.ndarray,
    payload: np.ndarray,
) -> np.ndarray:
    """Build a structured array of complete packets (headers, payload, CRC) in one vectorized pass.

    ``payload`` must be a structured array of ``PAYLOAD_DTYPE`` (or convertible to it). Call
    ``.tobytes()`` on the result to get the wire bytes.
    """
    n = len(payload)
    apid = np.broadcast_to(np.asarray(apid), (n,))
    if np.any((apid < fmt.MIN_APID) | (apid > fmt.MAX_APID)):
        raise ValueError(f"APID outside {fmt.MIN_APID}..{fmt.MAX_APID}")
    packets = np.zeros(n, dtype=fmt.PACKET_DTYPE)
    packets["primary"]["word0"] = fmt.word0(apid.astype(np.uint16))
    packets["primary"]["word1"] = fmt.word1(np.broadcast_to(np.asarray(sequence_count), (n,)))
    packets["primary"]["data_length"] = fmt.DATA_LENGTH_FIELD
    coarse, fine = fmt.to_ccsds_time(np.broadcast_to(np.asarray(unix_time), (n,)))
    packets["secondary"]["coarse_time"] = coarse
    packets["secondary"]["fine_time"] = fine
    packets["payload"] = payload.astype(fmt.PAYLOAD_DTYPE, copy=False)
    as_bytes = packets.view(np.uint8).reshape(n, fmt.PACKET_SIZE)
    packets["crc"] = fmt.crc16_ccitt(as_bytes[:, : fmt.CRC_OFFSET])
    return packets
