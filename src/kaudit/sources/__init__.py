"""Where events come from: bulk import of files (here), later the webhook and the log follower."""
