"""The same per-user work written for stream processors people would use instead (section ``peers``)."""
