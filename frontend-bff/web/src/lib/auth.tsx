// The session in React: sign-in state, the per-session GraphQL client, silent refresh, and
// the redirect to sign-in (with every cached answer dropped) when a session ends or is revoked.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { Provider } from "urql";
import i18n from "../i18n";
import { RefreshSessionDocument, LogoutDocument, type LoginResultFragment as LoginResult, type SessionUserFragment } from "../gql/graphql";
import { publicClient, sessionClient, type SessionClient } from "./client";
import { SessionStore } from "./session";
import { announceEnded, announceTokens, askOtherTabs, listenToTabs, withRefreshLock } from "./tabs";

export type AuthState = "loading" | "anonymous" | "signed-in";

interface AuthContextValue {
  state: AuthState;
  user: SessionUserFragment | null;
  /** Why the last session ended, shown on the sign-in page. */
  endedReason: "expired" | "signed-out" | null;
  completeSignIn(result: LoginResult): void;
  signOut(): Promise<void>;
  /** After a password change the server ends every session. */
  endSession(reason: "expired" | "signed-out"): void;
  setUser(user: SessionUserFragment): void;
  connection: SessionClient | null;
  /** The current access token, for the few plain-HTTP calls (support attachments). */
  accessToken(): string | null;
}

const AuthContext = createContext<AuthContextValue | null>(null);

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

const store = new SessionStore();
const anon = publicClient();

export function applyLanguage(language: string | null | undefined): void {
  const lng = language?.startsWith("es") ? "es" : language?.startsWith("en") ? "en" : null;
  if (lng && i18n.language !== lng) void i18n.changeLanguage(lng);
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<AuthState>("loading");
  const [user, setUserState] = useState<SessionUserFragment | null>(null);
  const [endedReason, setEndedReason] = useState<"expired" | "signed-out" | null>(null);
  const [connection, setConnection] = useState<SessionClient | null>(null);
  const refreshing = useRef<Promise<boolean> | null>(null);

  const stateRef = useRef<AuthState>("loading");
  useEffect(() => {
    stateRef.current = state;
  }, [state]);

  const end = useCallback((reason: "expired" | "signed-out", fromOtherTab = false) => {
    if (!fromOtherTab) announceEnded(reason);
    store.clear();
    setUserState(null);
    setEndedReason(reason);
    setState("anonymous");
    setConnection((old) => {
      old?.dispose();
      return null;
    });
  }, []);

  const refresh = useCallback((): Promise<boolean> => {
    if (refreshing.current) return refreshing.current;
    const before = store.tokens?.refreshToken ?? null;
    refreshing.current = withRefreshLock(async () => {
      // Another tab refreshed while this one waited for the lock: its tokens are already ours.
      if (store.tokens && store.tokens.refreshToken !== before) return true;
      const refreshToken = store.tokens?.refreshToken ?? store.storedRefreshToken();
      if (!refreshToken) return false;
      const res = await anon.mutation(RefreshSessionDocument, { refreshToken }).toPromise();
      const payload = res.data?.refreshToken;
      if (payload?.token && payload.refreshToken) {
        store.signIn({ token: payload.token, refreshToken: payload.refreshToken, expiresAt: payload.tokenExpiresAt ?? null }, payload.user ?? null);
        if (payload.user) setUserState(payload.user);
        if (store.tokens) announceTokens({ tokens: store.tokens, user: store.user });
        return true;
      }
      // A network failure keeps the session (the banner says we're offline); a refused
      // refresh token ends it.
      if (res.error?.networkError) return false;
      end("expired");
      return false;
    }).finally(() => {
      refreshing.current = null;
    });
    return refreshing.current;
  }, [end]);

  const startSession = useCallback(() => {
    setConnection((old) => {
      old?.dispose();
      return sessionClient(store, refresh);
    });
    setState("signed-in");
  }, [refresh]);

  // Other tabs: answer their questions, take their refreshed tokens, end with them.
  useEffect(
    () =>
      listenToTabs({
        current: () => (store.tokens && stateRef.current === "signed-in" ? { tokens: store.tokens, user: store.user } : null),
        adopt: (shared) => {
          if (stateRef.current !== "signed-in") return; // a signed-out tab stays signed out
          store.signIn(shared.tokens, shared.user);
          if (shared.user) setUserState(shared.user);
        },
        ended: (reason) => {
          if (stateRef.current === "signed-in") end(reason, true);
        },
      }),
    [end],
  );

  // On load: the session of an open tab, else resume from the stored refresh token.
  useEffect(() => {
    if (!store.storedRefreshToken()) {
      setState("anonymous");
      return;
    }
    void askOtherTabs().then(async (shared) => {
      if (shared) store.signIn(shared.tokens, shared.user);
      const ok = shared !== null || (await refresh());
      if (ok) {
        if (store.user) setUserState(store.user);
        applyLanguage(store.user?.preferredLanguage);
        startSession();
      } else if (!store.tokens) setState("anonymous");
    });
  }, [refresh, startSession]);

  // Silent refresh a minute before the access token expires.
  useEffect(() => {
    if (state !== "signed-in") return;
    let timer: ReturnType<typeof setTimeout>;
    const schedule = () => {
      const wait = store.refreshInMs();
      if (wait === null) return;
      timer = setTimeout(() => void refresh().then(schedule), wait);
    };
    schedule();
    return () => clearTimeout(timer);
  }, [state, refresh]);

  const completeSignIn = useCallback((result: LoginResult) => {
    if (!result.token || !result.refreshToken) return;
    store.signIn({ token: result.token, refreshToken: result.refreshToken, expiresAt: result.tokenExpiresAt ?? null }, result.user ?? null);
    if (store.tokens) announceTokens({ tokens: store.tokens, user: store.user });
    setUserState(result.user ?? null);
    setEndedReason(null);
    applyLanguage(result.user?.preferredLanguage);
    startSession();
  }, [startSession]);

  const signOut = useCallback(async () => {
    const client = connection?.client;
    if (client) await client.mutation(LogoutDocument, {}).toPromise().catch(() => undefined);
    end("signed-out");
  }, [connection, end]);

  const setUser = useCallback((next: SessionUserFragment) => {
    store.setUser(next);
    setUserState(next);
  }, []);

  const value = useMemo<AuthContextValue>(
    () => ({ state, user, endedReason, completeSignIn, signOut, endSession: end, setUser, connection, accessToken: () => store.tokens?.token ?? null }),
    [state, user, endedReason, completeSignIn, signOut, end, setUser, connection],
  );

  return (
    <AuthContext.Provider value={value}>
      <Provider value={connection?.client ?? anon}>{children}</Provider>
    </AuthContext.Provider>
  );
}

export { anon as publicGraphQL };
