import { useTranslation } from "react-i18next";
import { NavLink } from "react-router";
import { useQuery } from "urql";
import { UnreadNotificationCountDocument } from "../../gql/graphql";
import { useNotificationAdded } from "./live";

/** The bell in the app shell: the unread count, re-read whenever a notification arrives. */
export function Bell() {
  const { t } = useTranslation();
  const [result, refetch] = useQuery({ query: UnreadNotificationCountDocument, requestPolicy: "cache-and-network" });
  useNotificationAdded(() => refetch({ requestPolicy: "network-only" }));
  const count = result.data?.unreadNotificationCount ?? 0;
  const label = count ? t("notifications.bellUnread", { count }) : t("notifications.bell");
  return (
    <NavLink to="/notifications" className="icon-link bell" aria-label={label} title={label} data-testid="bell">
      <span aria-hidden="true">🔔</span>
      {count ? <span className="badge" data-testid="bell-count" aria-hidden="true">{count > 99 ? "99+" : count}</span> : null}
    </NavLink>
  );
}
