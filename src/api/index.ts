/** The HTTP API: a Hono app (and a transport-neutral handler around it), API keys, and the Mermaid view of a blueprint. */
export { createApi, createApiApp, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_WAIT_SECONDS, LOCAL_TENANT, type Api, type ApiFetch, type ApiOptions } from './app.js';
export { RUN_INDEX_LIMIT, type RunSummary } from './api-store.js';
export { ApiKeyStore, API_SCOPES, type ApiScope, type ApiKeyInfo, type ApiPrincipal, type CreateKeyInput } from './keys.js';
export { toMermaid } from './mermaid.js';
export { ApiErrorCodes, type ApiErrorCode } from './respond.js';
export type { ApiHandler, ApiRequest, ApiResponse } from './types.js';
