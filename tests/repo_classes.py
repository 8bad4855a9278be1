"""Source of classes a repository defines itself (``models_ext/``), written by the custom-model tests."""

# A scikit-learn pipeline step (tests/unit and tests/integration test_custom_models).
CLIPPER = """
    import numpy as np
    from sklearn.base import BaseEstimator, TransformerMixin


    class Clipper(TransformerMixin, BaseEstimator):
        '''The repository's own pipeline step: clip standardised features to +-limit.'''

        def __init__(self, limit=3.0):
            self.limit = limit

        def fit(self, X, y=None):
            self.n_features_in_ = X.shape[1]
            return self

        def transform(self, X):
            return np.clip(X, -self.limit, self.limit)
"""
