"""TESP (Lan et al. 2019): config and presets, episode buffer, task encoder, learner."""

from jaxmeta.algorithms.tesp.buffer import EpisodeBuffer, buffer_init, buffer_insert
from jaxmeta.algorithms.tesp.config import PRESETS, AdaptSVConfig, TESPConfig, paper_config
from jaxmeta.algorithms.tesp.encoder import Encoder, task_encoder
from jaxmeta.algorithms.tesp.learner import (
    EmbeddingBatch,
    TaskInference,
    embedding_learner,
    encoder_inference,
    make_tesp,
)

__all__ = ["PRESETS", "AdaptSVConfig", "EmbeddingBatch", "Encoder", "EpisodeBuffer",
           "TESPConfig", "TaskInference", "buffer_init", "buffer_insert", "embedding_learner",
           "encoder_inference", "make_tesp", "paper_config", "task_encoder"]
