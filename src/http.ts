/** HTTP answers of every role: one Reply shape, JSON and coded-error bodies, and the writers for node:http and raw sockets. */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { EdgeError, edgeError, type ErrorName } from './errors.js';

/** The content type of every JSON answer. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** An HTTP answer, independent of the server that writes it. */
export interface Reply {
  status: number;
  body: string;
  contentType: string;
  headers?: Record<string, string>;
}

/** A JSON reply. */
export function jsonReply(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { status, body: JSON.stringify(body), contentType: JSON_CONTENT_TYPE, ...(headers ? { headers } : {}) };
}

/** The JSON error reply of DESIGN.md for a coded error, with the error's own headers. */
export function errorReply(name: ErrorName | EdgeError, message?: string, headers?: Record<string, string>): Reply {
  const err = name instanceof EdgeError ? name : edgeError(name, message);
  return jsonReply(err.status, err.toJSON(), { ...err.headers, ...headers });
}

/** `200 OK`: the status line's code and reason phrase. */
export function statusText(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
}

/** Write `reply` through a node:http response (no-store; node omits the body for HEAD). */
export function sendReply(res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, { 'content-type': reply.contentType, 'content-length': Buffer.byteLength(reply.body), 'cache-control': 'no-store', ...reply.headers });
  res.end(reply.body);
}

/** Send a JSON body. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  sendReply(res, jsonReply(status, body, headers));
}

/** Send the JSON error body of DESIGN.md with the error's status and headers. */
export function sendError(res: ServerResponse, err: EdgeError): void {
  sendReply(res, errorReply(err));
}

/** The complete HTTP/1.1 response for `reply` with `Connection: close`, for writing on a raw socket. */
export function rawResponse(reply: Reply): Buffer {
  let head = `HTTP/1.1 ${statusText(reply.status)}\r\ncontent-type: ${reply.contentType}\r\ncontent-length: ${Buffer.byteLength(reply.body)}\r\ncache-control: no-store\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries(reply.headers ?? {})) if (k !== 'connection') head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n${reply.body}`, 'utf8');
}
