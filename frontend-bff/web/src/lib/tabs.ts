// One session for every tab of the app. Refresh tokens rotate (a used one is dead, and a reuse
// ends the whole session as a theft signal), so tabs that each refreshed on their own would sign
// one another out: a second tab's refresh killed the first tab's access token, whose refresh
// with the old token then ended both. Here the tabs share their tokens over a BroadcastChannel
// (same origin only): a new tab asks the open ones before refreshing, a refresh is announced to
// all, refreshes are serialised by a Web Lock, and signing out in one tab signs out every tab.
import type { SessionUserFragment } from "../gql/graphql";
import type { Tokens } from "./session";

export interface Shared {
  tokens: Tokens;
  user: SessionUserFragment | null;
}

type Message = { type: "ask" } | { type: "tokens"; shared: Shared } | { type: "ended"; reason: "expired" | "signed-out" };

const channel: BroadcastChannel | null = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("bourse.session");

export interface TabHandlers {
  /** The tokens this tab holds, to answer a new tab (null: none). */
  current(): Shared | null;
  /** Another tab refreshed or signed in. */
  adopt(shared: Shared): void;
  /** Another tab's session ended. */
  ended(reason: "expired" | "signed-out"): void;
}

/** Listen to the other tabs; returns the function that stops listening. */
export function listenToTabs(handlers: TabHandlers): () => void {
  if (!channel) return () => undefined;
  const onMessage = (event: MessageEvent<Message>) => {
    const message = event.data;
    if (message.type === "ask") {
      const shared = handlers.current();
      if (shared) channel.postMessage({ type: "tokens", shared } satisfies Message);
    } else if (message.type === "tokens") handlers.adopt(message.shared);
    else handlers.ended(message.reason);
  };
  channel.addEventListener("message", onMessage);
  return () => channel.removeEventListener("message", onMessage);
}

/** Tokens from an open tab, if one answers within `waitMs`. */
export function askOtherTabs(waitMs = 250): Promise<Shared | null> {
  const tabs = channel;
  if (!tabs) return Promise.resolve(null);
  return new Promise((resolve) => {
    const onMessage = (event: MessageEvent<Message>) => {
      if (event.data.type !== "tokens") return;
      done(event.data.shared);
    };
    const timer = setTimeout(() => done(null), waitMs);
    function done(shared: Shared | null) {
      clearTimeout(timer);
      tabs?.removeEventListener("message", onMessage);
      resolve(shared);
    }
    tabs.addEventListener("message", onMessage);
    tabs.postMessage({ type: "ask" } satisfies Message);
  });
}

export function announceTokens(shared: Shared): void {
  channel?.postMessage({ type: "tokens", shared } satisfies Message);
}

export function announceEnded(reason: "expired" | "signed-out"): void {
  channel?.postMessage({ type: "ended", reason } satisfies Message);
}

/** Runs `fn` while no other tab is refreshing (Web Locks; alone where they are missing). */
export async function withRefreshLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (!locks) return fn();
  let result: { value: T } | null = null;
  await locks.request("bourse.refresh", async () => {
    result = { value: await fn() };
  });
  if (!result) throw new Error("the refresh lock ran nothing");
  return (result as { value: T }).value;
}
