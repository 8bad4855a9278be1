"""The PyTorch trainer: device resolution, seeding, in-memory batching, AMP, early stopping,
atomic per-epoch checkpoints and resume,
data-parallel ranks under PyTorch's elastic launcher (:mod:`gitml.train.distributed`)."""
