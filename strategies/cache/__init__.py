"""The response cache: repeated (and, optionally, near-repeated) model calls answered without a provider.

- `keys` — what identifies an answer (model id, endpoint, exact messages, answer-changing parameters);
- `store` + `stores/` — where answers live (memory, SQLite by default, Redis for replicas), TTL and caps;
- `semantic` — the optional layer that reuses the answer to a prompt meaning the same;
- `scope` — per-call state: the `cache: false` bypass and distinct samples of repeated ensemble members;
- `response_cache` — the policy (which calls qualify, what a hit returns);
- `client` — `CachingClient`, the `ModelClient` wrapper installed around every client by the server.

Nothing here is imported by the core unless the cache is used, so numpy and Redis stay optional.
"""
