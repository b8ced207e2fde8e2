"""Image I/O, the shared CPU inference engine and face2paint. Knows nothing of bots or storage."""
