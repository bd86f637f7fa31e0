import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import { MarkNotificationsReadDocument, NotificationsDocument, type NotificationFieldsFragment } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { Button, Card, EmptyState, Segmented, Skeleton } from "../../ui/components";
import { formatDateTime } from "../../ui/format";
import { useMarkedRead, useNotificationAdded } from "./live";

/** The inbox: newest first, live (a new notification re-reads the first page), read marks. */
export function Inbox() {
  const { t } = useTranslation();
  const locale = useLocale();
  const [filter, setFilter] = useState<"all" | "unread">("all");
  const [after, setAfter] = useState<string | null>(null);
  const [result, refetch] = useQuery({ query: NotificationsDocument, variables: { unreadOnly: filter === "unread", first: 20, after } });
  const [, mark] = useMutation(MarkNotificationsReadDocument);
  const markedRead = useMarkedRead();
  useNotificationAdded(() => {
    if (after === null) refetch({ requestPolicy: "network-only" });
  });
  const conn = result.data?.notifications;
  const unread = result.data?.unreadNotificationCount ?? 0;

  async function read(ids?: string[]) {
    await mark(ids ? { ids } : {});
    markedRead();
    refetch({ requestPolicy: "network-only" });
  }

  return (
    <div className="page">
      <div className="row gap wrap align-center space-between">
        <h1>{t("notifications.title")}</h1>
        <Button variant="secondary" disabled={!unread} onClick={() => read()} data-testid="mark-all-read">{t("notifications.markAll")}</Button>
      </div>
      <Card>
        <Segmented label={t("notifications.show")} value={filter} onChange={(v) => { setFilter(v); setAfter(null); }} options={[{ value: "all", label: t("notifications.all") }, { value: "unread", label: t("notifications.unread", { count: unread }) }]} />
        {!conn ? <Skeleton lines={4} /> : conn.edges.length === 0 ? (
          <EmptyState title={t("notifications.none")} body={t("notifications.noneBody")} />
        ) : (
          <ul className="list" data-testid="inbox">
            {conn.edges.map(({ node }) => <Item key={node.id} n={node} locale={locale} onRead={() => read([node.id])} />)}
          </ul>
        )}
        {conn?.pageInfo.hasNextPage ? <Button variant="ghost" onClick={() => setAfter(conn.pageInfo.endCursor ?? null)}>{t("common.loadMore")}</Button> : null}
        {after ? <Button variant="ghost" onClick={() => setAfter(null)}>{t("notifications.newest")}</Button> : null}
      </Card>
    </div>
  );
}

function Item({ n, locale, onRead }: { n: NotificationFieldsFragment; locale: string; onRead: () => void }) {
  const { t } = useTranslation();
  return (
    <li className={`list-row notification${n.readAt ? "" : " unread"}`} data-kind={n.kind} data-read={n.readAt ? "yes" : "no"}>
      <span className="grow">
        <span className="pill small">{t(`notifications.kind.${n.kind}`)}</span>{" "}
        <strong>{n.title}</strong>
        <br />
        <span>{n.body}</span>
        <br />
        <small className="muted">{formatDateTime(n.createdAt, locale)}</small>
        {n.assetId ? <> · <Link to={`/asset/${n.assetId}`}>{n.assetId}</Link></> : null}
        {n.orderId ? <> · <Link to="/orders">{t("notifications.seeOrders")}</Link></> : null}
      </span>
      {n.readAt ? null : <Button variant="ghost" onClick={onRead} aria-label={t("notifications.markReadAria", { title: n.title })}>{t("notifications.markRead")}</Button>}
    </li>
  );
}
