"""A local Ray head for the Ray executor's tests: 127.0.0.1, 2 CPUs, an 80 MB object store, no
dashboard, its workers given the tests' ``PYTHONPATH`` (they unpickle ``support.fakes``) and
whatever else the caller's environment needs (a store's ``AWS_*`` variables)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from support.paths import REPO_ROOT, TESTS


@contextmanager
def local_ray_head(ray: Any, env: Mapping[str, str] | None = None, keep_pythonpath: bool = False) -> Iterator[Any]:
    """``ray`` started for the block and shut down after (any running head is shut down first).
    ``keep_pythonpath``: the workers also get this process's ``PYTHONPATH``."""
    if ray.is_initialized():
        ray.shutdown()
    paths = [str(REPO_ROOT), str(TESTS)]
    if keep_pythonpath:
        paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    ray.init(
        num_cpus=2, object_store_memory=80 * 1024**2, include_dashboard=False, _node_ip_address="127.0.0.1",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths), "TORCH_HOME": os.environ.get("TORCH_HOME", ""),
                                  **(env or {})}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
