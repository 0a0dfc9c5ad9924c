"""vlscale.allocator (which the transfer stage sets): a large block freed is reused rather than returned to the
system, in the main thread and in any other (no page faults on a block of the same size again); glibc's defaults
and VLSCALE_SYSTEM_MALLOC=1 map it afresh each time."""
import json
import os
import platform
import subprocess
import sys

import pytest

# a fresh process allocates, touches and frees an 80 MiB block five times, in the main thread and then in another,
# and reports the page faults of the last four of each
PROBE = """
import json, resource, sys, threading
import numpy as np
state = False
if sys.argv[1] == "set":
    from vlscale import allocator
    state = allocator.keep_freed_memory()

def probe(out):
    faults = []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = np.ones(80 * 2**20 // 8)
        del block
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    out.append(faults[1:])

got = []
probe(got)
thread = threading.Thread(target=probe, args=(got,))
thread.start()
thread.join()
print(json.dumps({"set": state, "main": got[0], "thread": got[1]}))
"""


def _probe(how: str, opt_out: str) -> dict:
    env = {**os.environ, "VLSCALE_SYSTEM_MALLOC": opt_out}
    done = subprocess.run([sys.executable, "-c", PROBE, how], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_the_allocator_setting_keeps_a_freed_block_for_the_next_one_in_every_thread():
    huge_pages = 80 * 2**20 // (2 * 2**20)  # the fewest faults a fresh 80 MiB can take (2 MiB pages, where used)
    tuned, defaults, opted_out = _probe("set", "0"), _probe("bare", "0"), _probe("set", "1")
    assert tuned["set"] and not defaults["set"] and not opted_out["set"]
    for untouched in (defaults, opted_out):  # a block this large: a fresh mmap each time, a fault per page at least
        assert min(untouched["main"]) >= huge_pages and min(untouched["thread"]) >= huge_pages
    # set: the block freed is the next one's, already in memory, in the main thread and in another
    assert max(tuned["main"]) * 10 < min(defaults["main"])
    assert max(tuned["thread"]) * 10 < min(defaults["thread"])
