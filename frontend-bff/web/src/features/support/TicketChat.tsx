// One ticket's conversation, live both ways (supportMessages), with typing indicators and read
// receipts (supportActivity). Messages are shown as text, never as HTML. Staff also get the
// internal-note switch, canned replies, status and assignment, and the customer panel.
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";
import { useMutation, useQuery, useSubscription } from "urql";
import {
  MarkSupportTicketReadDocument, RateTicketDocument, SendSupportMessageDocument, SendSupportTypingDocument,
  SupportActivityDocument, SupportMessagesDocument, SupportTicketDocument,
  type SupportActivitySubscription, type SupportMessageFieldsFragment, type SupportMessagesSubscription,
} from "../../gql/graphql";
import { useAuth } from "../../lib/auth";
import { useLocale } from "../../lib/locale";
import { Button, Card, FormErrors, Skeleton } from "../../ui/components";
import { fieldError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime, formatTime } from "../../ui/format";
import { downloadAttachment, uploadAttachment } from "./attachments";
import { StaffPanel, StaffTools } from "./StaffDesk";
import { StatusBadge } from "./Support";

const TYPING_SHOWN_MS = 3000;
const TYPING_SENT_EVERY_MS = 2000;

export function TicketPage() {
  const { t } = useTranslation();
  const locale = useLocale();
  const { id = "" } = useParams();
  const { user, accessToken } = useAuth();
  const staff = user?.role === "SUPPORT" || user?.role === "ADMIN";
  const [result, refetch] = useQuery({ query: SupportTicketDocument, variables: { id }, requestPolicy: "cache-and-network" });
  const [, sendMessage] = useMutation(SendSupportMessageDocument);
  const [, sendTyping] = useMutation(SendSupportTypingDocument);
  const [, markRead] = useMutation(MarkSupportTicketReadDocument);
  const [, rate] = useMutation(RateTicketDocument);
  const [live, setLive] = useState<SupportMessageFieldsFragment[]>([]);
  const [typingName, setTypingName] = useState<string | null>(null);
  const [otherReadAt, setOtherReadAt] = useState<string | null>(null);
  const [text, setText] = useState("");
  const [internal, setInternal] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);
  const lastTyping = useRef(0);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const listRef = useRef<HTMLOListElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);

  useSubscription({ query: SupportMessagesDocument, variables: { ticketId: id } }, (_prev: unknown, data: SupportMessagesSubscription) => {
    const message = data.supportMessages;
    setLive((prev) => (prev.some((m) => m.id === message.id) ? prev : [...prev, message]));
    if (message.author.id !== user?.id) setTypingName(null);
    return data;
  });
  useSubscription({ query: SupportActivityDocument, variables: { ticketId: id } }, (_prev: unknown, data: SupportActivitySubscription) => {
    const event = data.supportActivity;
    if (event.userId === user?.id) return data;
    if (event.kind === "TYPING") {
      setTypingName(event.username);
      clearTimeout(typingTimer.current);
      typingTimer.current = setTimeout(() => setTypingName(null), TYPING_SHOWN_MS);
    } else {
      setOtherReadAt(event.at);
    }
    return data;
  });
  useEffect(() => () => clearTimeout(typingTimer.current), []);

  const ticket = result.data?.supportTicket;
  const messages = useMemo(() => {
    const stored = ticket?.messages.edges.map((e) => e.node) ?? [];
    const known = new Set(stored.map((m) => m.id));
    return [...stored, ...live.filter((m) => !known.has(m.id))];
  }, [ticket, live]);
  const lastFromOther = [...messages].reverse().find((m) => m.author.id !== user?.id)?.id;

  // Read receipts: tell the other side when their newest message has been seen here, once per
  // message (the mutation's answer refreshes the ticket, which must not mark it again).
  const markedRef = useRef<string | null>(null);
  const ticketId = ticket?.id;
  useEffect(() => {
    if (!ticketId || !lastFromOther || markedRef.current === lastFromOther) return;
    markedRef.current = lastFromOther;
    void markRead({ ticketId });
  }, [ticketId, lastFromOther, markRead]);
  useEffect(() => {
    const list = listRef.current;
    if (list) list.scrollTop = list.scrollHeight; // the newest message in view
  }, [messages.length]);

  if (!ticket) {
    if (result.fetching || !result.data) return <div className="page"><Card><Skeleton lines={5} /></Card></div>;
    return <div className="page"><h1>{t("support.notFound")}</h1><Link to="/support">{t("support.back")}</Link></div>;
  }
  const readAt = otherReadAt ?? (staff ? ticket.customerReadAt : ticket.staffReadAt) ?? null;
  const mine = messages.filter((m) => m.author.id === user?.id);
  const lastMine = mine[mine.length - 1];
  const seen = !!(lastMine && readAt && readAt >= lastMine.createdAt);
  const closed = ticket.status === "CLOSED";

  function onType(value: string) {
    setText(value);
    const now = Date.now();
    if (value && now - lastTyping.current > TYPING_SENT_EVERY_MS) {
      lastTyping.current = now;
      void sendTyping({ ticketId: ticket!.id });
    }
  }

  async function attach(file: File | undefined) {
    if (!file) return;
    setBusy(true);
    const answer = await uploadAttachment(ticket!.id, file, accessToken());
    setBusy(false);
    setErrors(answer.errors);
    if (fileRef.current) fileRef.current.value = "";
    if (answer.message) refetch({ requestPolicy: "network-only" });
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await sendMessage({ input: { ticketId: ticket!.id, body: text, internal: staff && internal } });
    setBusy(false);
    const payload = res.data?.sendSupportMessage;
    setErrors([...(payload?.errors ?? [])]);
    if (payload?.message) {
      const sent = payload.message;
      setLive((prev) => (prev.some((m) => m.id === sent.id) ? prev : [...prev, sent]));
      setText("");
      refetch({ requestPolicy: "network-only" });
    }
  }

  return (
    <div className="page">
      <Link to={staff ? "/staff" : "/support"} className="muted">← {staff ? t("staff.queue") : t("support.back")}</Link>
      <div className={staff ? "grid-2 ticket-layout" : ""}>
        <Card title={ticket.subject} action={<StatusBadge ticket={ticket} staff={staff} />}>
          <p className="muted small">{t(`supportCategory.${ticket.category}`)} · {t(`priority.${ticket.priority}`)} · {formatDateTime(ticket.createdAt, locale)}{ticket.orderId ? ` · ${t("support.order")} ${ticket.orderId.slice(0, 8)}` : ""}</p>
          <ol className="chat" aria-live="polite" data-testid="chat" ref={listRef}>
            {messages.map((m) => (
              <li key={m.id} className={`bubble ${m.author.id === user?.id ? "bubble-mine" : "bubble-theirs"} ${m.internal ? "bubble-internal" : ""}`} data-testid="message">
                <div className="bubble-meta small">
                  <strong>{m.author.username}</strong>{m.author.role !== "CUSTOMER" ? ` · ${t("support.team")}` : ""}{m.internal ? ` · ${t("staff.internalNote")}` : ""} · {formatTime(m.createdAt, locale)}
                </div>
                {/* Text, exactly as written: React escapes it, so markup shows as characters. */}
                {m.attachment ? (
                  <button type="button" className="attachment" data-testid="attachment" onClick={() => void downloadAttachment(m.attachment!, accessToken())}>
                    <span aria-hidden="true">↓</span> {m.attachment.filename} <span className="muted">({Math.max(1, Math.round(m.attachment.size / 1024))} KB)</span>
                  </button>
                ) : (
                  <div className="bubble-body" data-testid="message-body">{m.body}</div>
                )}
              </li>
            ))}
          </ol>
          <p className="muted small typing" aria-live="polite" data-testid="typing">{typingName ? t("support.typing", { name: typingName }) : "\u00a0"}</p>
          {seen ? <p className="muted small" data-testid="seen">{t("support.seen")}</p> : null}
          {closed ? <p className="muted">{t("support.closed")}</p> : (
            <form onSubmit={submit} className="stack" noValidate>
              <div className={`field ${fieldError(t, errors, "body") ? "field-invalid" : ""}`}>
                <label htmlFor="chat-input">{t("support.reply")}</label>
                <textarea id="chat-input" rows={3} maxLength={5000} value={text} onChange={(e) => onType(e.target.value)} data-testid="chat-input" />
                {fieldError(t, errors, "body") ? <div className="field-error" role="alert">{fieldError(t, errors, "body")}</div> : null}
              </div>
              {staff ? <StaffTools internal={internal} setInternal={setInternal} insert={(body) => setText((prev) => (prev ? `${prev}\n${body}` : body))} /> : null}
              <FormErrors errors={errors} fields={["body"]} />
              <div className="row gap wrap">
                <Button type="submit" busy={busy} data-testid="chat-send">{t("support.send")}</Button>
                <label className="btn btn-secondary file-button">
                  {t("support.attach")}
                  <input ref={fileRef} type="file" accept="image/png,image/jpeg,image/gif,image/webp,application/pdf" className="sr-only" data-testid="attach-input" onChange={(e) => void attach(e.target.files?.[0])} />
                </label>
              </div>
            </form>
          )}
          {!staff && (ticket.status === "RESOLVED" || ticket.status === "CLOSED") ? (
            <div className="row gap wrap rating" data-testid="rating">
              <span>{ticket.rating ? t("support.rated", { n: ticket.rating }) : t("support.rate")}</span>
              {!ticket.rating ? [1, 2, 3, 4, 5].map((n) => (
                <Button key={n} variant="secondary" aria-label={t("support.stars", { n })} onClick={async () => { await rate({ ticketId: ticket.id, rating: n }); refetch({ requestPolicy: "network-only" }); }}>{"★".repeat(n)}</Button>
              )) : null}
            </div>
          ) : null}
        </Card>
        {staff ? <StaffPanel ticket={ticket} onChange={() => refetch({ requestPolicy: "network-only" })} /> : null}
      </div>
    </div>
  );
}
