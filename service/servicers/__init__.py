"""Thin gRPC servicers: convert the request, call a use case, convert the result."""
