import { useTranslation } from "react-i18next";
import { NavLink } from "react-router";
import { useQuery } from "urql";
import { UnreadNotificationCountDocument } from "../../gql/graphql";
import { useNotificationAdded, useOnMarkedRead } from "./live";

/** The bell in the app shell: the unread count, re-read whenever a notification arrives. */
export function Bell() {
  const { t } = useTranslation();
  const [result, refetch] = useQuery({ query: UnreadNotificationCountDocument, requestPolicy: "cache-and-network" });
  useNotificationAdded(() => refetch({ requestPolicy: "network-only" }));
  useOnMarkedRead(() => refetch({ requestPolicy: "network-only" }));
  const count = result.data?.unreadNotificationCount ?? 0;
  const label = count ? t("notifications.bellUnread", { count }) : t("notifications.bell");
  return (
    <NavLink to="/notifications" className="icon-link bell" aria-label={label} title={label} data-testid="bell">
      <BellIcon />
      {count ? <span className="badge" data-testid="bell-count" aria-hidden="true">{count > 99 ? "99+" : count}</span> : null}
    </NavLink>
  );
}

/** A bell drawn in SVG (an emoji needs a font the device may lack). */
export function BellIcon() {
  return (
    <svg className="bell-icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
      <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z" />
    </svg>
  );
}
