"""The Docker Engine API endpoint (aiohttp): routes, streams, hijacked
connections and version negotiation, over brandpy.engine."""
