import { useEffect, useId, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useMutation } from "urql";
import { ReplaceOrderDocument, type OrderFieldsFragment } from "../../gql/graphql";
import { Button, FormErrors, TextField } from "../../ui/components";
import { errorSentence, transportError, type UserErrorLike } from "../../ui/errors";
import { toReplaceOrderInput, type ReplaceInput } from "./ticket";

const FIELD_OF: Record<string, keyof ReplaceInput> = { quantity: "quantity", price: "limitPrice", stopPrice: "stopPrice" };

/** Replace an open order's quantity or prices (replaceOrder): a new total quantity keeps the
 *  order's place in the queue only when it goes down and the price is unchanged. */
export function ReplaceDialog({ order, onDone, onCancel }: { order: OrderFieldsFragment; onDone: (order: OrderFieldsFragment) => void; onCancel: () => void }) {
  const { t } = useTranslation();
  const id = useId();
  const [, replace] = useMutation(ReplaceOrderDocument);
  const [input, setInput] = useState<ReplaceInput>({ quantity: order.quantity ?? "", limitPrice: order.price ?? "", stopPrice: order.stopPrice ?? "" });
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [busy, setBusy] = useState(false);
  const hasStop = order.orderSubType === "STOP_LOSS" || order.orderSubType === "STOP_LIMIT";

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onCancel();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onCancel]);

  const set = (key: keyof ReplaceInput, value: string) => {
    setErrors([]);
    setInput((old) => ({ ...old, [key]: value }));
  };
  const errorFor = (field: keyof ReplaceInput) => {
    const found = errors.find((e) => FIELD_OF[e.field ?? ""] === field);
    return found ? errorSentence(t, found) : null;
  };

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const res = await replace({ id: order.id, input: toReplaceOrderInput({ ...order, stopPrice: hasStop ? order.stopPrice : null }, input) });
    setBusy(false);
    const payload = res.data?.replaceOrder;
    if (!payload) return setErrors(transportError(res.error));
    if (payload.errors.length || !payload.order) return setErrors([...payload.errors]);
    onDone(payload.order);
  }

  return (
    <div className="overlay">
      <form className="dialog" role="dialog" aria-modal="true" aria-labelledby={`${id}-t`} onSubmit={submit} noValidate data-testid="replace-dialog">
        <h2 id={`${id}-t`}>{t("orders.replaceTitle", { symbol: order.assetId })}</h2>
        <p className="muted small">{t("orders.replaceExplain", { filled: order.filledQuantity })}</p>
        <TextField label={t("orders.newQuantity")} name="quantity" inputMode="decimal" autoComplete="off" value={input.quantity} onChange={(e) => set("quantity", e.target.value)} error={errorFor("quantity")} suffix={order.assetId} />
        {order.price ? <TextField label={t("ticket.limitPrice")} name="limitPrice" inputMode="decimal" value={input.limitPrice} onChange={(e) => set("limitPrice", e.target.value)} error={errorFor("limitPrice")} suffix={order.currency} /> : null}
        {hasStop ? <TextField label={t("ticket.stopPrice")} name="stopPrice" inputMode="decimal" value={input.stopPrice} onChange={(e) => set("stopPrice", e.target.value)} error={errorFor("stopPrice")} suffix={order.currency} /> : null}
        <FormErrors errors={errors.filter((e) => !FIELD_OF[e.field ?? ""])} />
        <div className="dialog-actions">
          <Button type="button" variant="secondary" onClick={onCancel}>{t("orders.keepOrder")}</Button>
          <Button type="submit" busy={busy}>{t("orders.replaceOrder")}</Button>
        </div>
      </form>
    </div>
  );
}
