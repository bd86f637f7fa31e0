// Websocket reconnect policy and the connection status the banner shows. Pure and small so
// the unit tests pin it: exponential backoff with full jitter, capped, never giving up.

export const BASE_DELAY_MS = 500;
export const MAX_DELAY_MS = 15_000;

/** Delay before reconnect attempt `attempt` (0-based): uniform in [base/2, min(cap, base*2^n)]. */
export function retryDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempt));
  const floor = BASE_DELAY_MS / 2;
  return Math.round(floor + random() * (ceiling - floor));
}

export type ConnectionState = "connecting" | "connected" | "reconnecting";

/** Tracks the socket's lifecycle; `reconnecting` only after a connection was lost. */
export class ConnectionStatus {
  private state: ConnectionState = "connecting";
  private everConnected = false;
  private listeners = new Set<(state: ConnectionState) => void>();

  get current(): ConnectionState {
    return this.state;
  }

  connecting(): void {
    this.set(this.everConnected ? "reconnecting" : "connecting");
  }

  connected(): void {
    this.everConnected = true;
    this.set("connected");
  }

  closed(): void {
    if (this.everConnected) this.set("reconnecting");
  }

  subscribe(listener: (state: ConnectionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }
}
