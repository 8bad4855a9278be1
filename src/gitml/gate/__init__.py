"""Promotion gate: thresholds, champion comparison, significance and budgets, as pure logic."""
