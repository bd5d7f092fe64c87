"""Write lecture 4's shipped reference curves (fdrl_lib/widgets/data/lecture4_curves.json).

TRPO, PPO-KL and PPO-clip at their Config() defaults on CartPole-v1, seeds 0-2, 30,000 env steps
each with no early stop, evaluated every 2,000 steps. Run: python benchmarks/lecture4_curves.py
"""

import json
import os
import time
from pathlib import Path

from fdrl_lib import lectures
from fdrl_lib.widgets import lecture4

if __name__ == "__main__":
    load, start, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
    runs = lecture4.compare("CartPole-v1", seeds=range(3), steps=30_000)
    out = Path(lecture4.__file__).parent / "data" / lecture4.REFERENCE
    out.write_text(json.dumps(runs, separators=(",", ":")))
    print(out, out.stat().st_size, "bytes")
    timing = lectures.measured(time.perf_counter() - start, time.process_time() - cpu, load)
    lectures.record("benchmarks/lecture4_curves.py", timing)  # README's run-time table
    lectures.refresh()
