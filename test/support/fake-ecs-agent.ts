import { sendJson, startJsonServer } from './fake-http.js';

/** The task protection requests' path under ECS_AGENT_URI for the fake agent's task. */
export const PROTECTION_PATH = '/api/task-1/task-protection/v1/state';

/**
 * A local ECS container agent: answers PUT <ECS_AGENT_URI>/task-protection/v1/state as the agent does
 * (`{"protection":{…}}`, or `{"error":{…}}` with a 4xx for a bad request) and records every request.
 */
export async function startFakeAgent(options: { fail?: boolean } = {}) {
  const requests: Array<{ method: string; path: string; body: unknown }> = [];
  const waiters: Array<() => void> = [];
  const server = await startJsonServer((req, body: { ProtectionEnabled?: unknown } | undefined, res) => {
    requests.push({ method: req.method!, path: req.url!, body });
    if (options.fail) {
      sendJson(res, 500, { error: { Arn: 'arn:aws:ecs:eu-west-1:1:task/c/task-1', Code: 'ServerException', Message: 'agent unavailable' } });
    } else if (req.method === 'PUT' && req.url === PROTECTION_PATH && typeof body?.ProtectionEnabled === 'boolean') {
      sendJson(res, 200, { protection: { ProtectionEnabled: body.ProtectionEnabled, ExpirationDate: body.ProtectionEnabled ? '2030-01-01T00:00:00Z' : null, TaskArn: 'arn:aws:ecs:eu-west-1:1:task/c/task-1' } });
    } else {
      sendJson(res, 400, { error: { Arn: 'arn:aws:ecs:eu-west-1:1:task/c/task-1', Code: 'InvalidParameterException', Message: 'bad request' } });
    }
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    agentUri: `${server.url}/api/task-1`,
    requests,
    close: server.close,
    /** Resolves once the recorded requests satisfy `check`. */
    async until(check: (r: typeof requests) => boolean): Promise<void> {
      while (!check(requests)) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}

export const ON = { ProtectionEnabled: true, ExpiresInMinutes: 60 };
export const OFF = { ProtectionEnabled: false };
