// Shared building blocks: every control has a visible label or an accessible name.
import { useEffect, useId, useRef, type ComponentProps, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import type { UserErrorLike } from "./errors";
import { errorSentence } from "./errors";
import { trend, type DecimalLike } from "./format";

type ButtonProps = ComponentProps<"button"> & { variant?: "primary" | "secondary" | "ghost" | "danger" | "buy" | "sell"; busy?: boolean; block?: boolean };

export function Button({ variant = "primary", busy, block, className, children, disabled, ...rest }: ButtonProps) {
  return (
    <button
      {...rest}
      disabled={disabled || busy}
      aria-busy={busy || undefined}
      className={["btn", `btn-${variant}`, block ? "btn-block" : "", className ?? ""].join(" ").trim()}
    >
      {busy ? <span className="spinner" aria-hidden="true" /> : null}
      {children}
    </button>
  );
}

type FieldProps = InputHTMLAttributes<HTMLInputElement> & { label: string; error?: string | null; hint?: ReactNode; suffix?: ReactNode };

export function TextField({ label, error, hint, suffix, id, className, ...rest }: FieldProps) {
  const auto = useId();
  const inputId = id ?? auto;
  const describedBy = [error ? `${inputId}-error` : "", hint ? `${inputId}-hint` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field ${error ? "field-invalid" : ""} ${className ?? ""}`}>
      <label htmlFor={inputId}>{label}</label>
      <div className="field-control">
        <input id={inputId} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...rest} />
        {suffix ? <span className="field-suffix">{suffix}</span> : null}
      </div>
      {hint ? <div id={`${inputId}-hint`} className="field-hint">{hint}</div> : null}
      {error ? <div id={`${inputId}-error`} className="field-error" role="alert">{error}</div> : null}
    </div>
  );
}

type SelectProps = SelectHTMLAttributes<HTMLSelectElement> & { label: string; options: { value: string; label: string }[]; error?: string | null };

export function SelectField({ label, options, error, id, ...rest }: SelectProps) {
  const auto = useId();
  const selectId = id ?? auto;
  return (
    <div className={`field ${error ? "field-invalid" : ""}`}>
      <label htmlFor={selectId}>{label}</label>
      <div className="field-control">
        <select id={selectId} aria-invalid={error ? true : undefined} {...rest}>
          {options.map((o) => <option key={o.value} value={o.value}>{o.label}</option>)}
        </select>
      </div>
      {error ? <div className="field-error" role="alert">{error}</div> : null}
    </div>
  );
}

/** A row of mutually exclusive choices (buy/sell, chart ranges). */
export function Segmented<T extends string>({ label, value, options, onChange, size }: { label: string; value: T; options: { value: T; label: string; tone?: string }[]; onChange: (v: T) => void; size?: "sm" }) {
  return (
    <div className={`segmented ${size === "sm" ? "segmented-sm" : ""}`} role="radiogroup" aria-label={label}>
      {options.map((o) => (
        <button
          key={o.value}
          type="button"
          role="radio"
          aria-checked={value === o.value}
          className={`segment ${value === o.value ? "segment-on" : ""} ${o.tone && value === o.value ? `segment-${o.tone}` : ""}`}
          onClick={() => onChange(o.value)}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}

export function Card({ title, action, children, className, labelledBy }: { title?: ReactNode; action?: ReactNode; children: ReactNode; className?: string; labelledBy?: string }) {
  const auto = useId();
  const headingId = labelledBy ?? auto;
  return (
    <section className={`card ${className ?? ""}`} aria-labelledby={title ? headingId : undefined}>
      {title ? (
        <header className="card-head">
          <h2 id={headingId}>{title}</h2>
          {action}
        </header>
      ) : null}
      {children}
    </section>
  );
}

export function Skeleton({ lines = 3, height }: { lines?: number; height?: number }) {
  const { t } = useTranslation();
  return (
    <div className="skeleton-group" role="status" aria-label={t("common.loading")}>
      {Array.from({ length: lines }, (_, i) => (
        <div key={i} className="skeleton" style={height ? { height } : { width: `${90 - i * 12}%` }} />
      ))}
    </div>
  );
}

export function EmptyState({ title, body, action }: { title: string; body?: string; action?: ReactNode }) {
  return (
    <div className="empty">
      <div className="empty-icon" aria-hidden="true">◇</div>
      <p className="empty-title">{title}</p>
      {body ? <p className="empty-body">{body}</p> : null}
      {action}
    </div>
  );
}

export function Change({ value, children }: { value: DecimalLike | null | undefined; children: ReactNode }) {
  return <span className={`change change-${trend(value)}`}>{children}</span>;
}

export function Stat({ label, value, sub, testId }: { label: string; value: ReactNode; sub?: ReactNode; testId?: string }) {
  return (
    <div className="stat" data-testid={testId}>
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
      {sub ? <div className="stat-sub">{sub}</div> : null}
    </div>
  );
}

/** Errors without a field (or whose field has no control on this form). */
export function FormErrors({ errors, fields = [] }: { errors: readonly UserErrorLike[]; fields?: string[] }) {
  const { t } = useTranslation();
  const loose = errors.filter((e) => !e.field || !fields.includes(e.field));
  if (!loose.length) return null;
  return (
    <div className="form-errors" role="alert">
      {loose.map((e, i) => <p key={i}>{errorSentence(t, e)}{e.code === "KYC_REQUIRED" ? <> <Link to="/verify-identity">{t("kyc.verifyNow")}</Link></> : null}</p>)}
    </div>
  );
}

export function Notice({ tone = "info", children }: { tone?: "info" | "success" | "warning" | "danger"; children: ReactNode }) {
  return <div className={`notice notice-${tone}`} role={tone === "danger" ? "alert" : "status"}>{children}</div>;
}

/** A modal confirmation: focus moves into it, Escape cancels. */
export function ConfirmDialog({ title, body, confirmLabel, cancelLabel, onConfirm, onCancel, busy, tone = "danger" }: { title: string; body: ReactNode; confirmLabel: string; cancelLabel: string; onConfirm: () => void; onCancel: () => void; busy?: boolean; tone?: "danger" | "primary" }) {
  const id = useId();
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    ref.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onCancel();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onCancel]);
  return (
    <div className="overlay">
      <div className="dialog" role="alertdialog" aria-modal="true" aria-labelledby={`${id}-t`} aria-describedby={`${id}-b`}>
        <h2 id={`${id}-t`}>{title}</h2>
        <div id={`${id}-b`} className="dialog-body">{body}</div>
        <div className="dialog-actions">
          <Button variant="secondary" onClick={onCancel} ref={ref}>{cancelLabel}</Button>
          <Button variant={tone} onClick={onConfirm} busy={busy}>{confirmLabel}</Button>
        </div>
      </div>
    </div>
  );
}
