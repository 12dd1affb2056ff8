"""Alerts: records and their table, noise control as pure functions of hits and a clock,
templates, and notification channels behind one `Channel` protocol."""
