"""Tiny, valid, deterministic WAV files standing in for call recordings.

A recording is a canonical 44-byte RIFF/WAVE header followed by a few hundred 8-bit mono
samples at 8 kHz (telephone quality): a short tone, or silence. Same arguments, same bytes.
"""

from __future__ import annotations

import math
import struct
from functools import lru_cache

SAMPLE_RATE = 8000


@lru_cache(maxsize=64)
def _tone(frequency: int, samples: int) -> bytes:
    """``samples`` unsigned 8-bit samples of a sine at ``frequency`` Hz (0 = silence)."""
    if frequency == 0:
        return bytes([128]) * samples
    step = 2.0 * math.pi * frequency / SAMPLE_RATE
    return bytes(128 + round(60 * math.sin(step * i)) for i in range(samples))


def wav_bytes(frequency: int, samples: int) -> bytes:
    """A complete mono 8-bit PCM WAV file.

    :param frequency: tone frequency in Hz, 0 for silence
    :param samples: number of samples (one byte each)
    :return: the file's bytes (44-byte header + ``samples`` bytes, padded to even length)
    """
    data = _tone(frequency, samples)
    pad = b"\x00" if len(data) % 2 else b""
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data) + len(pad),
        b"WAVE",
        b"fmt ",
        16,  # size of the fmt chunk
        1,  # PCM
        1,  # mono
        SAMPLE_RATE,
        SAMPLE_RATE,  # byte rate = sample rate * channels * bytes per sample
        1,  # block align
        8,  # bits per sample
        b"data",
        len(data),
    )
    return header + data + pad
