"""Process machinery, each piece written once: the background event loop (loop), the doorbell that wakes
a drainer at most once at a time and its background ringer (doorbell), the claim with a lease (lease), the
Redis Lua scripts with the one token bucket (buckets), and the patches of third-party code (patches,
daphne_requests). Apps use these; none keeps its own."""
