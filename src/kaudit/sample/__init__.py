"""Realistic sample audit data: a seeded cluster's everyday traffic plus injected attacks.

`generate.py` is the entry point (`generate`, `write_ndjson`); `traffic.py` and `attacks.py`
hold the scenarios, `cluster.py` the drawn topology and identities, `objects.py` the bodies.
"""
