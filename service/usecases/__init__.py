"""Use cases: what each RPC does, in terms of the engine and the repositories (no protobuf here).

Servicers convert a request, call one use case, convert its result. Repositories are synchronous and
run one transaction per call; use cases reach them through ``asyncio.to_thread``.
"""
