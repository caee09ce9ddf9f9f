/**
 * Error answers in Svix's two shapes: `HttpErrorOut` {code, detail} for everything but 422, and
 * `HTTPValidationError` {detail: [{loc, msg, type}]} for 422. The SDK parses any 4xx body as JSON,
 * so a 4xx that is not one of these would surface as a SyntaxError instead of an ApiException.
 * Codes and default details follow svix-server's `HttpError` constructors.
 */

export interface Violation {
  loc: string[];
  msg: string;
  type: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { code: string; detail: string } | { detail: Violation[] },
    readonly headers: Record<string, string> = {},
  ) {
    super(`svix stand-in answered ${status}`);
    this.name = "ApiError";
  }
}

export const notFound = (detail = "Entity not found") => new ApiError(404, { code: "not_found", detail });

export const conflict = (detail = "A conflict has occurred") =>
  new ApiError(409, { code: "conflict", detail });

export const badRequest = (code: string, detail: string) => new ApiError(400, { code, detail });

/** The stand-in's own capacity limits (it lives in memory for hours): a 400, as Svix's plan limits. */
export const limitReached = (detail: string) => badRequest("limit_reached", detail);

export const unauthorized = () =>
  new ApiError(401, { code: "authentication_failed", detail: "Incorrect authentication credentials." });

export const forbidden = () =>
  new ApiError(403, { code: "insufficient access", detail: "Insufficient access for the given operation." });

export const payloadTooLarge = (limit: number) =>
  new ApiError(413, { code: "payload_too_large", detail: `Request body is larger than ${limit} bytes` });

export const invalid = (violations: Violation[]) => new ApiError(422, { detail: violations });

export const invalidField = (loc: string[], msg: string, type = "value_error") =>
  invalid([{ loc, msg, type }]);
