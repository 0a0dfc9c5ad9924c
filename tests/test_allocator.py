"""vlscale.allocator: `import vlscale.transfer` sets glibc's allocator so that a large block freed is reused rather than
returned to the system (no page faults on a block of the same size again); VLSCALE_SYSTEM_MALLOC=1 leaves it alone."""
import json
import os
import subprocess
import sys

import pytest

# a fresh process allocates, touches and frees a 64 MiB block five times and reports the page faults of the last four
PROBE = """
import json, resource, sys
import numpy as np
state = {}
if sys.argv[1] == "import":
    import vlscale.transfer  # noqa: F401
    from vlscale import allocator
    state = allocator._state
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(64 * 2**20 // 8)
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"set": state.get("set", False), "faults": faults[1:]}))
"""


def _probe(how: str, opt_out: str) -> dict:
    env = {**os.environ, "VLSCALE_SYSTEM_MALLOC": opt_out}
    done = subprocess.run([sys.executable, "-c", PROBE, how], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's (Linux)")
def test_importing_the_transfer_package_keeps_a_freed_block_for_the_next_one():
    huge_pages = 64 * 2**20 // (2 * 2**20)  # the fewest faults a fresh 64 MiB can take (2 MiB pages, where used)
    tuned, defaults, opted_out = _probe("import", "0"), _probe("bare", "0"), _probe("import", "1")
    assert tuned["set"] and not defaults["set"] and not opted_out["set"]
    # glibc's defaults serve a block this large with a fresh mmap each time: at least a fault per page it touches
    assert min(defaults["faults"]) >= huge_pages and min(opted_out["faults"]) >= huge_pages
    # set: the block freed is the next one's, already in memory
    assert max(tuned["faults"]) * 10 < min(defaults["faults"])
