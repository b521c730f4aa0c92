"""Preloaded first by every process pool's fork server (``pools.bounded_process_map``).

The fork server is the stage's child, and the pool workers are the fork server's children. Each
worker holds the write end of the server's "alive" pipe, and the server exits only when that pipe
closes. So when the stage is killed, a busy worker keeps the server running, and the server keeps
the worker's parent alive. Nothing would end until the worker's current video is done. Importing
this module breaks that loop: the server dies with the stage (``PARENT_ENV`` names the stage, in case
it died while the server was starting), and every worker the server forks dies with the server.
Stage dies, so server dies, so workers die. The resource tracker exits once the last of them
has closed its pipe.
"""

from __future__ import annotations

import os

from pipeline.core import lifetime

_parent = os.environ.get(lifetime.PARENT_ENV)
lifetime.die_with_parent(int(_parent) if _parent else None)
lifetime.tie_forked_children()
