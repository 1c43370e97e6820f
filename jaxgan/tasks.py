"""What a run trains on and how it is judged, assembled from the three registries.

A `Task` is the data set (`jaxgan.data.DATASETS`, by `config.data.name`), the players (`jaxgan.models`, by
`config.generator.name` / `config.discriminator.name`) and the evaluations (`jaxgan.metrics.evaluations`, by
`config.evaluations`). The runner only sees this bundle.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import ml_collections

from jaxgan.data import Dataset, build_dataset
from jaxgan.metrics.evaluations import Evaluation, build_evaluation
from jaxgan.models import build_players


class Task(NamedTuple):
    data: Dataset
    evaluation: Evaluation
    build_players: Callable[[ml_collections.ConfigDict], tuple[nn.Module, nn.Module]]


def make_task(config: ml_collections.ConfigDict) -> Task:
    data = build_dataset(config)
    return Task(data, build_evaluation(config, data), lambda c: build_players(c, data.shape, data.num_classes))
