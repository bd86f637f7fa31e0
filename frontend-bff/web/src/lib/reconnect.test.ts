import { describe, expect, it } from "vitest";
import { BASE_DELAY_MS, ConnectionStatus, MAX_DELAY_MS, retryDelay } from "./reconnect";

describe("reconnect backoff", () => {
  it("grows exponentially and is capped", () => {
    const top = () => 1;
    expect(retryDelay(0, top)).toBe(BASE_DELAY_MS);
    expect(retryDelay(1, top)).toBe(BASE_DELAY_MS * 2);
    expect(retryDelay(3, top)).toBe(BASE_DELAY_MS * 8);
    expect(retryDelay(20, top)).toBe(MAX_DELAY_MS);
    expect(retryDelay(1000, top)).toBe(MAX_DELAY_MS);
  });

  it("jitters between half the base delay and the ceiling", () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      for (const r of [0, 0.25, 0.5, 0.999]) {
        const d = retryDelay(attempt, () => r);
        expect(d).toBeGreaterThanOrEqual(BASE_DELAY_MS / 2);
        expect(d).toBeLessThanOrEqual(MAX_DELAY_MS);
      }
    }
    expect(retryDelay(5, () => 0)).toBe(BASE_DELAY_MS / 2);
  });
});

describe("connection status", () => {
  it("says reconnecting only after a connection was lost, and recovers", () => {
    const status = new ConnectionStatus();
    const seen: string[] = [];
    status.subscribe((s) => seen.push(s));
    status.connecting();
    status.closed(); // never connected: a first attempt failing is not a "lost connection"
    expect(status.current).toBe("connecting");
    status.connected();
    status.closed();
    expect(status.current).toBe("reconnecting");
    status.connecting();
    expect(status.current).toBe("reconnecting");
    status.connected();
    expect(seen).toEqual(["connected", "reconnecting", "connected"]);
  });
});
