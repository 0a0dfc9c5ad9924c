"""The C library's allocator, set for XLA on a CPU (glibc on Linux; elsewhere nothing is changed).

A compiled XLA:CPU program allocates its temporary buffers at each run and frees them at the end; glibc serves a
large block with a fresh mmap and returns it to the system when freed (always above 32 MiB, and in any thread but
the main one above its arena's 64 MiB heap), so each step pays page faults for the memory it touches again. A
generative transfer's step, whose vocabulary projection makes it a run of short programs over large arrays, loses
much of its time there (bench/allocator.py, bench/transfer_stage.py). Only the transfer stage sets it
(`vlscale.transfer.stage.measure`, the transfer CLI and tools/transfer_tune.py): on the SigLIP trainer it is not yet
measured over a whole training run. Here
blocks of any size come from the one main heap (one arena for every thread), which keeps what is freed (never
trimmed, grown 256 MiB at a time), so a step reuses the pages of the one before. The cost: the process holds the most
memory it has ever used until it ends, and the threads share one arena's lock. Numbers do not change, only where
memory comes from (bench/allocator.py checks every step's loss both ways).

The environment variable VLSCALE_SYSTEM_MALLOC=1 leaves the allocator as it is.
"""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import warnings

OPT_OUT = "VLSCALE_SYSTEM_MALLOC"
# mallopt(3) options and their values: one arena, no allocation mmapped, the heap never trimmed, grown by 256 MiB.
# glibc before 2.35 refuses an mmap threshold above 32 MiB: then 32 MiB, the largest it takes.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
SETTINGS = {M_ARENA_MAX: (1,), M_MMAP_THRESHOLD: (2**31 - 1, 32 * 2**20), M_TRIM_THRESHOLD: (2**31 - 1,),
            M_TOP_PAD: (256 * 2**20,)}


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's allocator as the module docstring says, once per process. Returns whether every option is set
    (False without glibc, with VLSCALE_SYSTEM_MALLOC=1, or where glibc refused an option: a warning names it)."""
    if os.environ.get(OPT_OUT, "").strip() not in ("", "0") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    refused = [option for option, values in SETTINGS.items() if not any(mallopt(option, v) == 1 for v in values)]
    if refused:
        warnings.warn(f"glibc's mallopt refused options {refused} of vlscale.allocator.SETTINGS: XLA's buffers may "
                      "be mapped afresh at every step (slower, same numbers)", RuntimeWarning, stacklevel=2)
    return not refused
