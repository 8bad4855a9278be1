"""Hydra plugin that makes gitml's structured schemas visible to every Hydra compose.

DVC composes ``conf/`` itself on ``dvc exp run`` (``hydra.enabled``); Hydra discovers this
plugin through the ``hydra_plugins`` namespace package, so the schemas are registered in
the ConfigStore there too and ``dvc exp run -S trainer.epochs=abc`` fails at composition.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class GitmlSchemaPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # Called once per compose, before configs are loaded: the one place to register
        # without an import-time side effect.
        from gitml.config.schema import register_configs

        register_configs()
