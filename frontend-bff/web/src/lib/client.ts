// The GraphQL client: queries and mutations over HTTP, subscriptions over one websocket
// (graphql-transport-ws) that reconnects with backoff and re-subscribes by itself. One client
// per session: a new sign-in gets an empty cache.
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";
import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange, type Operation } from "urql";
import { ConnectionStatus, retryDelay } from "./reconnect";
import type { SessionStore } from "./session";

export interface SessionClient {
  client: Client;
  status: ConnectionStatus;
  dispose(): void;
}

function wsUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss:" : "ws:"}//${host}/graphql`;
}

function isUnauthenticated(error: { graphQLErrors: { extensions?: Record<string, unknown> }[] } | undefined): boolean {
  return !!error?.graphQLErrors.some((e) => e.extensions?.["code"] === "UNAUTHENTICATED");
}

/** A client without credentials, for sign-in, sign-up, refresh and password reset. */
export function publicClient(): Client {
  return new Client({ url: "/graphql", exchanges: [fetchExchange], requestPolicy: "network-only", preferGetMethod: false });
}

export function sessionClient(session: SessionStore, onUnauthenticated: () => Promise<boolean>): SessionClient {
  const status = new ConnectionStatus();
  const ws: WsClient = createWsClient({
    url: wsUrl(),
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, retryDelay(retries))),
    connectionParams: () => (session.tokens ? { Authorization: `Bearer ${session.tokens.token}` } : {}),
    on: {
      connecting: () => status.connecting(),
      connected: () => status.connected(),
      closed: () => status.closed(),
    },
  });

  const retry = (operation: Operation) => {
    if (operation.context["bourseRetried"]) return;
    void onUnauthenticated().then((ok) => {
      if (ok) client.reexecuteOperation({ ...operation, context: { ...operation.context, bourseRetried: true } });
    });
  };

  const client: Client = new Client({
    url: "/graphql",
    preferGetMethod: false,
    requestPolicy: "cache-and-network",
    fetchOptions: (): RequestInit => ({
      headers: session.tokens ? { Authorization: `Bearer ${session.tokens.token}` } : {},
    }),
    exchanges: [
      cacheExchange,
      mapExchange({
        onResult(result) {
          if (isUnauthenticated(result.error)) retry(result.operation);
          return result;
        },
      }),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });

  return {
    client,
    status,
    dispose: () => void ws.dispose(),
  };
}
