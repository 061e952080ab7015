"""Ranks other than 0 under torchrun: wait for training jobs from rank 0 and train their share.

Rank 0 runs the pipeline as usual (upstream stages, the cache, MLflow); whenever it trains a seed it sends the
job (spec, input paths, output folder) to every rank, and an empty job when it is done. The other ranks never
touch the tracking store or write checkpoints.
"""

from __future__ import annotations

import torch.distributed as torch_dist

from dualvgr.train.distributed import Distributed


def send_job(job, dist: Distributed) -> None:
    """Rank 0: hand ``job`` (a TrainJob, or None to finish) to every rank."""
    if dist.active:
        torch_dist.broadcast_object_list([job], src=0)


def follow(dist: Distributed, progress: bool = False) -> None:
    """Ranks > 0: train every job rank 0 sends until it sends None."""
    from dualvgr.train.stage import train_job

    while True:
        box = [None]
        torch_dist.broadcast_object_list(box, src=0)
        if box[0] is None:
            return
        train_job(box[0], log=None, dist=dist, progress=progress)
