"""Configuration: compose ``conf/`` into ``params.yaml``; load and validate it into typed objects."""
