"""Git operations (and, later, the forge API) behind small functions."""
