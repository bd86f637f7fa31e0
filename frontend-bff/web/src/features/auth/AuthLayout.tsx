import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";

export function AuthLayout({ title, subtitle, children, footer }: { title: string; subtitle?: string; children: ReactNode; footer?: ReactNode }) {
  const { t } = useTranslation();
  return (
    <div className="auth-page">
      <main className="auth-card" id="main">
        <Link to="/" className="brand brand-lg" aria-label="Bourse">
          <span className="brand-mark" aria-hidden="true" />
          Bourse
        </Link>
        <h1>{title}</h1>
        {subtitle ? <p className="muted">{subtitle}</p> : null}
        {children}
        {footer ? <div className="auth-footer">{footer}</div> : null}
      </main>
      <p className="auth-legal muted">{t("auth.legal")}</p>
    </div>
  );
}
