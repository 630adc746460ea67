/** Every coded error of rtc-edge, with the HTTP status and JSON code of DESIGN.md. */

export interface ErrorSpec {
  /** HTTP status when the error answers an HTTP request (0 = not an HTTP error). */
  status: number;
  /** Stable code in JSON bodies (`{"error": code}`) and WebSocket error messages. */
  code: string;
  /** Default human message. */
  message: string;
}

/** The catalogue. Keys are the `EDGE_ERR_*` codes; every one is documented in README.md. */
export const ERRORS = {
  EDGE_ERR_INVALID_POD_ID: { status: 400, code: 'invalid_pod_id', message: 'pod id must be a DNS-1123 label (a-z, 0-9, "-", at most 63 characters, alphanumeric at both ends)' },
  EDGE_ERR_INVALID_KEY: { status: 400, code: 'invalid_key', message: 'key must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" and "-", given once' },
  EDGE_ERR_KEY_MOVED: { status: 409, code: 'key_moved', message: 'another socket pod owns this key: connect to the url given, or get a new assignment from /ws/assign?key=' },
  EDGE_ERR_KEY_NOT_FOUND: { status: 404, code: 'key_not_found', message: 'no socket pod owns this key (none of its clients is connected, or its claim expired)' },
  EDGE_ERR_POD_NOT_FOUND: { status: 404, code: 'pod_not_found', message: 'no live socket pod with this id' },
  EDGE_ERR_POD_DRAINING: { status: 503, code: 'pod_draining', message: 'the socket pod is draining; get a new assignment from /ws/assign' },
  EDGE_ERR_NO_PODS_AVAILABLE: { status: 503, code: 'no_pods_available', message: 'no live socket pod that is not draining' },
  EDGE_ERR_UPGRADE_REQUIRED: { status: 426, code: 'upgrade_required', message: 'this route only accepts a WebSocket upgrade' },
  EDGE_ERR_UPSTREAM_UNREACHABLE: { status: 502, code: 'upstream_unreachable', message: 'the socket pod could not be reached' },
  EDGE_ERR_POD_ADDRESS_FORBIDDEN: { status: 502, code: 'pod_address_forbidden', message: 'the socket pod registered an address outside GATEWAY_POD_CIDRS; the gateway does not dial it' },
  EDGE_ERR_UPSTREAM_TIMEOUT: { status: 504, code: 'upstream_timeout', message: 'the socket pod did not complete the handshake in time' },
  EDGE_ERR_NOT_FOUND: { status: 404, code: 'not_found', message: 'no such route' },
  EDGE_ERR_METHOD_NOT_ALLOWED: { status: 405, code: 'method_not_allowed', message: 'method not allowed on this route' },
  EDGE_ERR_BAD_REQUEST: { status: 400, code: 'bad_request', message: 'malformed request' },
  EDGE_ERR_HEADERS_TOO_LARGE: { status: 431, code: 'headers_too_large', message: 'request headers too large' },
  EDGE_ERR_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request head was not received in time' },
  EDGE_ERR_GATEWAY_OVERLOADED: { status: 503, code: 'gateway_overloaded', message: 'the gateway is at its connection limit' },
  EDGE_ERR_GATEWAY_DRAINING: { status: 503, code: 'gateway_draining', message: 'the gateway is shutting down' },
  EDGE_ERR_GATEWAY_WORKER_DOWN: { status: 503, code: 'gateway_worker_down', message: 'a gateway worker process is down or restarting (GATEWAY_WORKERS): not ready until every worker serves' },
  EDGE_ERR_REGISTRY_UNAVAILABLE: { status: 503, code: 'registry_unavailable', message: 'the pod registry has been unreachable for too long to route safely' },
  EDGE_ERR_NODE_DRAINING: { status: 503, code: 'node_draining', message: 'this socket node is draining and takes no new connections' },
  EDGE_ERR_UNAUTHORIZED: { status: 401, code: 'unauthorized', message: 'the application refused this connection: no valid credentials' },
  EDGE_ERR_FORBIDDEN: { status: 403, code: 'forbidden', message: 'the application refused this connection' },
  EDGE_ERR_TOO_MANY_REQUESTS: { status: 429, code: 'too_many_requests', message: 'the application refused this connection: too many requests' },
  EDGE_ERR_UPGRADE_HOOK_FAILED: { status: 503, code: 'upgrade_hook_failed', message: "the application's onUpgrade hook failed; try again later" },
  EDGE_ERR_UPGRADE_HOOK_TIMEOUT: { status: 503, code: 'upgrade_hook_timeout', message: "the application's onUpgrade hook did not answer in time; try again later" },
  EDGE_ERR_NODE_RETIRING: { status: 503, code: 'node_retiring', message: 'the scaler is removing this socket node: it reports NotReady so that Kubernetes removes exactly this pod' },
  EDGE_ERR_INVALID_JSON: { status: 0, code: 'invalid_json', message: 'text frames must be valid JSON' },
  EDGE_ERR_INVALID_MESSAGE: { status: 0, code: 'invalid_message', message: 'message must be a JSON object with a string "type"' },
  EDGE_ERR_UNKNOWN_TYPE: { status: 0, code: 'unknown_type', message: 'unknown message type' },
  EDGE_ERR_HANDLER_FAILED: { status: 0, code: 'handler_failed', message: 'the application handler failed on this message' },
  EDGE_ERR_INVALID_CONFIG: { status: 0, code: 'invalid_config', message: 'invalid configuration' },
  EDGE_ERR_KUBERNETES_FORBIDDEN: { status: 0, code: 'kubernetes_forbidden', message: 'the Kubernetes API refused a request (RBAC)' },
  EDGE_ERR_INTERNAL: { status: 500, code: 'internal_error', message: 'internal error; see the server log' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorName = keyof typeof ERRORS;

/** An error with a stable `EDGE_ERR_*` name, an HTTP status and a JSON code. */
export class EdgeError extends Error {
  override readonly name: ErrorName;
  readonly status: number;
  readonly code: string;
  /** Extra headers for HTTP answers (e.g. Retry-After). */
  readonly headers: Record<string, string>;

  constructor(name: ErrorName, message?: string, options?: { headers?: Record<string, string>; cause?: unknown }) {
    const spec: ErrorSpec = ERRORS[name];
    super(message ?? spec.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = name;
    this.status = spec.status;
    this.code = spec.code;
    this.headers = options?.headers ?? {};
  }

  /** The JSON body of DESIGN.md: `{"error": code, "message": ...}`. */
  toJSON(): { error: string; message: string } {
    return { error: this.code, message: this.message };
  }
}

/** Create a coded error. */
export function edgeError(name: ErrorName, message?: string, options?: { headers?: Record<string, string>; cause?: unknown }): EdgeError {
  return new EdgeError(name, message, options);
}
