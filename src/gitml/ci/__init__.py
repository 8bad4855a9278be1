"""The logic behind the CI workflows, as gitml commands the workflows and tests both run."""
