// Who is signed in. The access token lives in memory only; the refresh token survives a reload
// in localStorage (the strict CSP is what keeps scripts from reading it). Signing out, or a
// refresh that fails, clears both, and the app replaces its GraphQL client (and with it every
// cached answer), so nothing private outlives the session.
import type { SessionUserFragment } from "../gql/graphql";

const REFRESH_KEY = "bourse.refreshToken";

export interface Tokens {
  token: string;
  refreshToken: string;
  expiresAt: string | null;
}

type Listener = () => void;

export class SessionStore {
  tokens: Tokens | null = null;
  user: SessionUserFragment | null = null;
  private listeners = new Set<Listener>();

  storedRefreshToken(): string | null {
    try {
      return localStorage.getItem(REFRESH_KEY);
    } catch {
      return null;
    }
  }

  signIn(tokens: Tokens, user: SessionUserFragment | null): void {
    this.tokens = tokens;
    if (user) this.user = user;
    try {
      localStorage.setItem(REFRESH_KEY, tokens.refreshToken);
    } catch {
      /* private mode: the session lasts as long as the tab */
    }
    this.emit();
  }

  setUser(user: SessionUserFragment): void {
    this.user = user;
    this.emit();
  }

  clear(): void {
    this.tokens = null;
    this.user = null;
    try {
      localStorage.removeItem(REFRESH_KEY);
    } catch {
      /* nothing stored */
    }
    this.emit();
  }

  /** Milliseconds until the access token should be refreshed (a minute before it expires). */
  refreshInMs(now: number = Date.now()): number | null {
    if (!this.tokens?.expiresAt) return null;
    return Math.max(5_000, new Date(this.tokens.expiresAt).getTime() - now - 60_000);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}
