import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery } from "urql";
import { DepositDocument, FundsDocument, WithdrawDocument } from "../../gql/graphql";
import { useLocale } from "../../lib/locale";
import { useOrderEvents } from "../../lib/live";
import { Button, Card, EmptyState, FormErrors, Notice, Segmented, SelectField, Skeleton, TextField } from "../../ui/components";
import { fieldError, transportError, type UserErrorLike } from "../../ui/errors";
import { formatDateTime, formatMoney, parseUserDecimal } from "../../ui/format";
import { KycNotice } from "../kyc/Identity";

const CURRENCIES = ["USD", "EUR", "GBP", "CHF", "CAD", "JPY"];
const PAGE = 10;

export function Funds() {
  const { t } = useTranslation();
  const locale = useLocale();
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;
  const [result, refetch] = useQuery({ query: FundsDocument, variables: { first: PAGE, after } });
  const [, deposit] = useMutation(DepositDocument);
  const [, withdraw] = useMutation(WithdrawDocument);
  const [kind, setKind] = useState<"deposit" | "withdraw">("deposit");
  const [amount, setAmount] = useState("");
  const [currency, setCurrency] = useState("USD");
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One key per intended transfer: a retried click cannot move money twice.
  const [idempotencyKey, setKey] = useState(() => crypto.randomUUID());

  useOrderEvents(() => refetch({ requestPolicy: "network-only" }));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setDone(null);
    const value = parseUserDecimal(amount);
    if (!value || value.lte(0)) return setErrors([{ field: "amount", code: "INVALID_AMOUNT", message: "" }]);
    setBusy(true);
    const input = { amount: value.toFixed(), currency, idempotencyKey };
    const res = kind === "deposit"
      ? await deposit({ input: { ...input, paymentMethod: "sandbox:bank" } }).then((r) => ({ payload: r.data?.deposit, error: r.error }))
      : await withdraw({ input: { ...input, withdrawalMethod: "sandbox:bank" } }).then((r) => ({ payload: r.data?.withdraw, error: r.error }));
    setBusy(false);
    const payload = res.payload;
    if (!payload) return setErrors(transportError(res.error));
    setErrors([...payload.errors]);
    if (!payload.errors.length) {
      setDone(t(kind === "deposit" ? "funds.deposited" : "funds.withdrawn", { amount: formatMoney(value, currency, locale), status: t(`txStatus.${payload.transaction?.status ?? "PENDING"}`) }) + (payload.transaction && "holdReason" in payload.transaction && payload.transaction.holdReason ? ` ${t("funds.heldBody")}` : ""));
      setAmount("");
      setKey(crypto.randomUUID());
      setCursors([null]);
      refetch({ requestPolicy: "network-only" });
    }
  }

  const account = result.data?.account;
  const txs = result.data?.transactions;
  return (
    <div className="page">
      <h1>{t("nav.funds")}</h1>
      <div className="grid-2">
        <Card title={t("funds.move")}>
          <form onSubmit={submit} noValidate className="stack">
            <KycNotice />
            <Segmented label={t("funds.direction")} value={kind} onChange={(v) => { setKind(v); setErrors([]); setDone(null); }} options={[{ value: "deposit", label: t("funds.deposit") }, { value: "withdraw", label: t("funds.withdraw") }]} />
            <div className="row gap">
              <TextField className="grow" label={t("funds.amount")} name="amount" inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} error={fieldError(t, errors, "amount")} />
              <SelectField label={t("funds.currency")} value={currency} onChange={(e) => setCurrency(e.target.value)} options={CURRENCIES.map((c) => ({ value: c, label: c }))} error={fieldError(t, errors, "currency")} />
            </div>
            <p className="muted small">{kind === "deposit" ? t("funds.fromBank") : t("funds.toBank")}</p>
            <FormErrors errors={errors} fields={["amount", "currency"]} />
            {done ? <Notice tone="success">{done}</Notice> : null}
            <Button type="submit" busy={busy} block>{kind === "deposit" ? t("funds.depositCta") : t("funds.withdrawCta")}</Button>
          </form>
        </Card>
        <Card title={t("funds.balances")}>
          {!account ? <Skeleton lines={3} /> : (
            <>
              <div className="stat-row">
                <div className="stat" data-testid="funds-buying-power"><div className="stat-label">{t("home.buyingPower")}</div><div className="stat-value">{formatMoney(account.buyingPower, account.baseCurrency, locale)}</div></div>
              </div>
              {account.cash.length === 0 ? <EmptyState title={t("funds.noCash")} /> : (
                <table className="table">
                  <thead><tr><th scope="col">{t("funds.currency")}</th><th scope="col" className="num">{t("funds.total")}</th><th scope="col" className="num">{t("funds.available")}</th><th scope="col" className="num">{t("funds.held")}</th></tr></thead>
                  <tbody>
                    {account.cash.map((c) => (
                      <tr key={c.currency} data-currency={c.currency}>
                        <td>{c.currency}</td>
                        <td className="num">{formatMoney(c.total, c.currency, locale)}</td>
                        <td className="num">{formatMoney(c.available, c.currency, locale)}</td>
                        <td className="num" data-testid={`held-${c.currency}`}>{formatMoney(c.held, c.currency, locale)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          )}
        </Card>
      </div>
      <Card title={t("funds.history")}>
        {!txs ? <Skeleton lines={4} /> : txs.edges.length === 0 ? <EmptyState title={t("funds.noHistory")} body={t("funds.noHistoryBody")} /> : (
          <div className="table-wrap">
            <table className="table" data-testid="transactions">
              <thead><tr><th scope="col">{t("funds.date")}</th><th scope="col">{t("funds.type")}</th><th scope="col" className="num">{t("funds.amount")}</th><th scope="col">{t("orders.status")}</th></tr></thead>
              <tbody>
                {txs.edges.map(({ node: tx }) => (
                  <tr key={tx.id}>
                    <td>{formatDateTime(tx.createdAt, locale)}</td>
                    <td>{t(`txType.${tx.type}`)}</td>
                    <td className="num">{formatMoney(tx.type === "WITHDRAWAL" ? `-${tx.amount}` : tx.amount, tx.currency, locale)}</td>
                    <td><span className={`badge badge-${tx.status === "COMPLETED" ? "success" : tx.status === "FAILED" ? "danger" : "info"}`}>{t(`txStatus.${tx.status}`)}</span>{tx.holdReason ? <> <span className="badge badge-warning" data-testid="held">{t("funds.heldForReview")}</span></> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <div className="pager">
          <Button variant="secondary" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>{t("common.previous")}</Button>
          <span className="muted small">{t("common.page", { n: cursors.length })}</span>
          <Button variant="secondary" disabled={!txs?.pageInfo.hasNextPage} onClick={() => txs?.pageInfo.endCursor && setCursors([...cursors, txs.pageInfo.endCursor])}>{t("common.next")}</Button>
        </div>
      </Card>
    </div>
  );
}
