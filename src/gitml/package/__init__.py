"""The bundle: the one verified artifact that ships (model, preprocessing, signature,
metadata, drift reference sample, model card, sha256 manifest)."""
