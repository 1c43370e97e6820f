"""Evaluation metrics as pure, jit-compatible functions of features, logits or samples.

`jaxgan.metrics.image` holds FID, KID, Inception Score, precision/recall and the mode count;
`jaxgan.metrics.memorization` the nearest-neighbour check; `jaxgan.metrics.mixture` the 2-D mixtures' modes,
high-quality fraction and reverse KL. The runner's evaluations (`jaxgan.metrics.evaluations`), the shipped
classifier and InceptionV3 are imported from their own modules.
"""

from jaxgan.metrics.image import (
    feature_statistics,
    fid_from_features,
    frechet_distance,
    inception_score_from_logits,
    kid_from_features,
    mode_coverage,
    precision_recall_from_features,
)
from jaxgan.metrics.memorization import MemorizationReport, memorization_report, nearest_neighbours
from jaxgan.metrics.mixture import mixture_metrics

__all__ = [
    "MemorizationReport",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "inception_score_from_logits",
    "kid_from_features",
    "memorization_report",
    "mixture_metrics",
    "mode_coverage",
    "nearest_neighbours",
    "precision_recall_from_features",
]
