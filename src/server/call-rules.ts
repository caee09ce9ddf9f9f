import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * What every call obeys once its caller is known and its message decoded, whatever the protocol:
 * the server's deadline and the metrics. Connect's interceptor and the fast framing both run calls
 * through `runCall`, so a rule changed here changes for every client.
 */
export interface CallRules {
  /** Longest a unary RPC may take, whatever deadline the client set. */
  rpcDeadlineMs: number;
  record: RpcRecorder;
}

export type RpcRecorder = (method: string, code: string, seconds: number) => void;

/** The deadline a unary call runs under: the client's, capped by the server's. */
export function deadlineOf(rules: CallRules, clientTimeoutMs: number | undefined): number {
  return clientTimeoutMs === undefined ? rules.rpcDeadlineMs : Math.min(rules.rpcDeadlineMs, clientTimeoutMs);
}

/** Runs a unary call under its deadline (DEADLINE_EXCEEDED past it), recording its code and time. */
export async function runCall<T>(
  rules: CallRules,
  method: string,
  deadlineMs: number,
  invoke: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  let code = "ok";
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ConnectError(`no answer within the server's ${deadlineMs} ms deadline`, Code.DeadlineExceeded),
        ),
      deadlineMs,
    );
  });
  try {
    return await Promise.race([invoke(), expired]);
  } catch (err) {
    code = codeName(err);
    throw err;
  } finally {
    clearTimeout(timer);
    rules.record(method, code, (performance.now() - started) / 1_000);
  }
}

export function codeName(err: unknown): string {
  return Code[ConnectError.from(err).code] ?? "unknown";
}

/** The call rules as a Connect interceptor. Streams (health Watch) are counted, never cut. */
export function callRulesInterceptor(rules: CallRules): Interceptor {
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    if (!req.stream) {
      // The client's own deadline reaches the handler through the call's signal (Connect's).
      return runCall(rules, method, rules.rpcDeadlineMs, () => next(req));
    }
    const started = performance.now();
    let code = "ok";
    try {
      return await next(req);
    } catch (err) {
      code = codeName(err);
      throw err;
    } finally {
      rules.record(method, code, (performance.now() - started) / 1_000);
    }
  };
}
