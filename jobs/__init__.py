"""Entry points and the runtime around the pure core: session, config, I/O, quality, tracking."""
