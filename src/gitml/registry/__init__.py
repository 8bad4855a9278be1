"""The model registry on git tags, in GTO's format (``model@v1.2.0``, ``model#prod#3``)."""
