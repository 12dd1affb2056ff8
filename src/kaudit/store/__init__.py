"""Event stores: one small interface, DuckDB (embedded default) today, ClickHouse later."""
