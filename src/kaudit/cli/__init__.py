"""The `kaudit` command line."""
