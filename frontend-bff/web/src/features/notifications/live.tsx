// One notificationAdded subscription per session, fanned out to the bell and the inbox (which
// re-read the server: the count shown is the server's, never a client-side guess).
import { createContext, useContext, useEffect, useMemo, useRef, type ReactNode } from "react";
import { useSubscription } from "urql";
import { NotificationAddedDocument, type NotificationAddedSubscription } from "../../gql/graphql";

export type AddedNotification = NotificationAddedSubscription["notificationAdded"];
type Listener = (n: AddedNotification) => void;

class Bus {
  private listeners = new Set<Listener>();
  private readListeners = new Set<() => void>();
  emit(n: AddedNotification) {
    for (const l of this.listeners) l(n);
  }
  on(listener: Listener) {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
  read() {
    for (const l of this.readListeners) l();
  }
  onRead(listener: () => void) {
    this.readListeners.add(listener);
    return () => {
      this.readListeners.delete(listener);
    };
  }
}

const BusContext = createContext<Bus | null>(null);

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const bus = useMemo(() => new Bus(), []);
  useSubscription({ query: NotificationAddedDocument }, (_prev: unknown, data: NotificationAddedSubscription) => {
    bus.emit(data.notificationAdded);
    return data;
  });
  return <BusContext.Provider value={bus}>{children}</BusContext.Provider>;
}

/** Calls `onAdded` for each new notification of this user while mounted. */
export function useNotificationAdded(onAdded: Listener): void {
  const bus = useContext(BusContext);
  const ref = useRef(onAdded);
  useEffect(() => {
    ref.current = onAdded;
  });
  useEffect(() => bus?.on((n) => ref.current(n)), [bus]);
}

/** Tells the bell that notifications were marked read (it re-reads the count). */
export function useMarkedRead(): () => void {
  const bus = useContext(BusContext);
  return () => bus?.read();
}

/** Calls `onRead` whenever notifications were marked read in this session. */
export function useOnMarkedRead(onRead: () => void): void {
  const bus = useContext(BusContext);
  const ref = useRef(onRead);
  useEffect(() => {
    ref.current = onRead;
  });
  useEffect(() => bus?.onRead(() => ref.current()), [bus]);
}
