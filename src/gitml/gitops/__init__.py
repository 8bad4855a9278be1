"""Git operations, the forge API (GitHub REST) and the retraining pull request."""
