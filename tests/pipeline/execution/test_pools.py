"""pipeline.execution.pools: ordered bounded maps, and process pools that die with the stage that started them."""

from __future__ import annotations

import os
import time

from pipeline.execution.job import Job
from pipeline.execution.pools import bounded_map, processes
from tests.process_tree import needs_proc, survivors_of_kill


class Slow:
    """A worker stuck on its video (as audio on a long clip): it never reads its next task by itself."""

    def __call__(self, batch: list[dict]) -> list[dict]:
        time.sleep(300)
        return batch


class Square:
    def __call__(self, batch: list[dict]) -> list[dict]:
        return [{"video_id": row["video_id"], "y": row["x"] ** 2, "pid": os.getpid()} for row in batch]


def test_process_pool_keeps_input_order_and_runs_in_two_workers():
    rows = [{"video_id": f"v{i}", "x": i} for i in range(40)]
    out = list(processes(Job("square", Square), rows, workers=2))
    assert [r["video_id"] for r in out] == [f"v{i}" for i in range(40)]
    assert [r["y"] for r in out] == [i * i for i in range(40)]
    assert os.getpid() not in {r["pid"] for r in out}


def test_bounded_map_keeps_order_with_uneven_durations():
    out = list(bounded_map(lambda i: (time.sleep(0.01 * (i % 3)), i)[1], range(20), workers=3, window=4))
    assert out == list(range(20))


SLOW_POOL = """
from pipeline.execution.job import Job
from pipeline.execution.pools import processes
from tests.pipeline.execution.test_pools import Slow
for _ in processes(Job("slow", Slow), [{"video_id": f"v{i}"} for i in range(8)], workers=2):
    pass
"""


@needs_proc
def test_killed_stage_takes_its_pool_down():
    """SIGKILL the process consuming ``processes(...)``: the fork server, both workers (busy) and the
    resource tracker must be gone within seconds, not run on and starve the next stage."""

    def two_workers_busy(tree: list[int]) -> bool:
        # fork server + resource tracker + 2 workers, all python; the workers are the server's children
        return len(tree) >= 4

    survivors = survivors_of_kill(SLOW_POOL, two_workers_busy)
    assert survivors == []
