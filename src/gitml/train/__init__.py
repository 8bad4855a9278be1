"""The PyTorch trainer: device resolution, seeding, in-memory batching, AMP, early stopping,
atomic per-epoch checkpoints and resume."""
