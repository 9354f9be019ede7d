"""Hand large bodies back to the OS after a burst, by fixing glibc's mmap threshold.

glibc serves blocks above `M_MMAP_THRESHOLD` (128 KiB at start) with their own mmap and
returns them on free, but each such free raises the threshold to the freed size, up to
32 MiB. After the first large bodies, 1 MiB bodies come from the heap arenas and stay
there: 64 clients sending 900 KB bodies left the ingest at about 290 MB resident when
idle, against 50 MB before. Setting the threshold once fixes it (and stops the dynamic
adjustment): the same burst leaves about 57 MB (docs/performance.md). Small bodies, the
usual webhook, are not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024


def release_large_blocks_to_os() -> bool:
    """Fix glibc's mmap threshold at 128 KiB; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.debug("no glibc mallopt here: large bodies use the C library's defaults")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
