"""Give the memory of a burst of runs back to the system once the operator is idle again.

A burst of runs allocates response bodies, JSON trees and messages by the megabyte; freed, they
stay in the C allocator's heap (glibc keeps free pages it does not find at the top), so the
RSS of an idle operator kept the burst's high-water mark. `malloc_trim` hands those pages back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        return None
    return trim


def release() -> None:
    """Collect cyclic garbage, then return the allocator's free pages to the system."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
