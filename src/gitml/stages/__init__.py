"""Thin stage entry points that dvc.yaml calls through the CLI.

Each takes the typed config and explicit paths, calls the library, and writes its outputs
atomically. Paths come from dvc.yaml (through the CLI), never from code.
"""
