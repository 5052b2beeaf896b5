/**
 * `GET /ws`: the realtime WebSocket. @fastify/websocket is registered here, in this encapsulated plugin, so only this
 * route is upgraded. A bearer token may come in the upgrade request's Authorization header (an invalid one refuses
 * the upgrade with 401) or later in an `auth` message; never in the URL.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import { HttpProblem, badRequest, unauthorized } from '../../errors.js';
import type { AcceptedIdentity, RealtimeService } from './realtime.service.js';

export interface RealtimeRoutesOptions {
  service: RealtimeService;
}

/** ws closes a connection (1009) on frames above this; messages between WS_MAX_MESSAGE_BYTES and it get an error. */
export const hardPayloadLimit = (maxMessageBytes: number) => Math.max(16 * maxMessageBytes, 65_536);

export default async function realtimeRoutes(app: FastifyInstance, opts: RealtimeRoutesOptions) {
  const { service } = opts;
  await app.register(websocket, {
    options: { maxPayload: hardPayloadLimit(app.config.realtime.maxMessageBytes) },
    // Our own preClose replaces the plugin's (which closes sockets without a code): 1001 "going away" to every
    // client, so server.close() is not held open by upgraded sockets.
    preClose(done) {
      service.closeConnections();
      done();
    },
    // A socket-level error (a frame above maxPayload, a broken connection) is the client's problem: warn, not error.
    errorHandler(error, socket, request) {
      request.log.warn({ err: error.message }, 'websocket connection error');
      socket.terminate();
    },
  });

  const upgradeIdentity = new WeakMap<FastifyRequest, AcceptedIdentity>();

  app.route({
    method: 'GET',
    url: '/ws',
    schema: { hide: true },
    async onRequest(request) {
      const query = request.query as Record<string, unknown> | undefined;
      if (query && ('token' in query || 'access_token' in query)) {
        throw badRequest('Never put a token in the URL (it ends up in logs): send it in an auth message or the Authorization header', 'TOKEN_IN_URL');
      }
      const header = request.headers.authorization;
      if (header === undefined) return;
      if (header.length < 8 || !/^bearer /i.test(header)) throw unauthorized('Bearer token required', 'UNAUTHORIZED');
      const token = header.slice(7).trim();
      const { claims } = await app.verifyAccessToken(token);
      upgradeIdentity.set(request, { userId: claims.sub, token, exp: claims.exp });
    },
    handler: async () => {
      throw new HttpProblem(426, 'UPGRADE_REQUIRED', 'Upgrade Required', 'GET /ws is a WebSocket endpoint: connect with a WebSocket client', {
        headers: { upgrade: 'websocket' },
      });
    },
    wsHandler(socket, request) {
      service.accept(socket, upgradeIdentity.get(request));
    },
  });
}
