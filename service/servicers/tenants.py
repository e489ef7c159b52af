"""TenantService: operators manage tenants and API keys (admin token only; checked by the interceptor)."""

from __future__ import annotations

import grpc

from lingting.asr.v1 import tenant_service_pb2 as pb
from lingting.asr.v1 import tenant_service_pb2_grpc as pb_grpc
from service import convert
from service.names import parse_api_key, parse_tenant
from service.usecases.tenants import TenantUseCases

__all__ = ["TenantServicer"]


class TenantServicer(pb_grpc.TenantServiceServicer):
    def __init__(self, tenants: TenantUseCases) -> None:
        self._tenants = tenants

    async def CreateTenant(
        self, request: pb.CreateTenantRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateTenantResponse:
        record = await self._tenants.create_tenant(request.tenant.display_name)
        return pb.CreateTenantResponse(tenant=convert.tenant_to_proto(record))

    async def ListTenants(
        self, request: pb.ListTenantsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTenantsResponse:
        page = await self._tenants.list_tenants(request.page_size, request.page_token)
        return pb.ListTenantsResponse(
            tenants=[convert.tenant_to_proto(t) for t in page.items], next_page_token=page.next_page_token
        )

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateApiKeyResponse:
        record, secret = await self._tenants.create_api_key(
            parse_tenant(request.parent), request.api_key.display_name
        )
        return pb.CreateApiKeyResponse(api_key=convert.api_key_to_proto(record), secret=secret)

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApiKeysResponse:
        page = await self._tenants.list_api_keys(
            parse_tenant(request.parent), request.page_size, request.page_token
        )
        return pb.ListApiKeysResponse(
            api_keys=[convert.api_key_to_proto(k) for k in page.items], next_page_token=page.next_page_token
        )

    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RevokeApiKeyResponse:
        tenant_id, key_id = parse_api_key(request.name)
        record = await self._tenants.revoke_api_key(tenant_id, key_id)
        return pb.RevokeApiKeyResponse(api_key=convert.api_key_to_proto(record))
