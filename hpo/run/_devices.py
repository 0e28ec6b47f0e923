"""GPU pinning: which devices each worker on this host sees (``CUDA_VISIBLE_DEVICES``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hpo.errors import HpoError, option

# A device index, or a GPU or MIG UUID as `nvidia-smi -L` prints it.
_DEVICE = re.compile(r"^(\d{1,3}|(GPU|MIG)-[0-9A-Za-z/-]{1,80})$")


def parse_devices(text: str) -> list[str]:
    """``"0,1"`` -> ``["0", "1"]``; a bad list is one line naming ``--gpus``."""
    devices = [d.strip() for d in text.split(",")]
    bad = [d for d in devices if not _DEVICE.match(d)]
    if not text.strip() or bad:
        raise HpoError(
            f"{option('gpus')} must be a comma-separated list of device indices or GPU UUIDs (e.g. 0,1), but got {text!r}"
        )
    if len(set(devices)) != len(devices):
        raise HpoError(f"{option('gpus')} must name each device once, but got {text!r}")
    return devices


def device_groups(devices: Sequence[str], workers: int) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` for each of ``workers`` workers sharing ``devices``.

    At least as many devices as workers: each worker gets its own contiguous share (4 devices, 2
    workers: ``0,1`` and ``2,3``), so no device is used twice. Fewer: the workers take turns on
    them (4 workers, 2 devices: ``0``, ``1``, ``0``, ``1``), several fits sharing a device.
    """
    if not devices or workers < 1:
        return []
    if len(devices) < workers:
        return [devices[i % len(devices)] for i in range(workers)]
    share, extra = divmod(len(devices), workers)
    groups, at = [], 0
    for i in range(workers):
        n = share + (i < extra)
        groups.append(",".join(devices[at : at + n]))
        at += n
    return groups
