"""Data: sources, the data contract (schema + validation), splitting and preprocessing."""
