"""`kaudit serve`: the webhook receiver, log followers, HTTP API and metrics in one process."""
