"""pydelayed's default plugins other than the Redis broker: serializer, executors, retries, metrics."""
