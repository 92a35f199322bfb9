"""The worker runtime: consumer, pipeline, event-time clock, codec, Redis store and scripts, metrics."""
