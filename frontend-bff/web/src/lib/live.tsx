// Live data: quotes by asset from the `quotes` subscription, and the signed-in user's order
// events from `orderUpdates`, fanned out to every screen that shows orders, cash or holdings
// (they refetch from the server: nothing about money is guessed on the client).
import { createContext, useContext, useEffect, useMemo, useRef, type ReactNode } from "react";
import { useSubscription } from "urql";
import { OrderUpdatesDocument, QuotesDocument, type OrderUpdatesSubscription, type QuoteFieldsFragment } from "../gql/graphql";

export type OrderEvent = OrderUpdatesSubscription["orderUpdates"];
type Listener = (event: OrderEvent) => void;

class OrderBus {
  private listeners = new Set<Listener>();
  emit(event: OrderEvent) {
    for (const l of this.listeners) l(event);
  }
  on(listener: Listener) {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}

const OrderBusContext = createContext<OrderBus | null>(null);

/** Mounted once inside the signed-in app: one orderUpdates subscription for every screen. */
export function OrderUpdatesProvider({ children }: { children: ReactNode }) {
  const bus = useMemo(() => new OrderBus(), []);
  useSubscription({ query: OrderUpdatesDocument }, (_prev: unknown, data: OrderUpdatesSubscription) => {
    bus.emit(data.orderUpdates);
    return data;
  });
  return <OrderBusContext.Provider value={bus}>{children}</OrderBusContext.Provider>;
}

/** Calls `onEvent` for each order event of this user while mounted. */
export function useOrderEvents(onEvent: Listener): void {
  const bus = useContext(OrderBusContext);
  const ref = useRef(onEvent);
  useEffect(() => {
    ref.current = onEvent;
  });
  useEffect(() => bus?.on((event) => ref.current(event)), [bus]);
}

export type QuoteMap = Record<string, QuoteFieldsFragment>;
const EMPTY: QuoteMap = {};

/** The latest quote of each asset, live. */
export function useQuotes(assetIds: string[]): QuoteMap {
  const key = [...new Set(assetIds)].sort().join(",");
  const ids = useMemo(() => (key ? key.split(",") : []), [key]);
  const [result] = useSubscription(
    { query: QuotesDocument, variables: { assetIds: ids }, pause: ids.length === 0 },
    (prev: QuoteMap | undefined, data) => ({ ...(prev ?? {}), [data.quotes.assetId]: data.quotes }),
  );
  return result.data ?? EMPTY;
}
