"""Stand-ins for what cannot be reached here (the forge), for tests and `make loop`."""
