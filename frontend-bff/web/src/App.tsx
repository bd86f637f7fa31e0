import { useEffect, useState, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { BrowserRouter, Link, Navigate, NavLink, Route, Routes, useLocation, useNavigate } from "react-router";
import { useQuery } from "urql";
import { MeDocument } from "./gql/graphql";
import { applyLanguage, AuthProvider, useAuth } from "./lib/auth";
import { OrderUpdatesProvider } from "./lib/live";
import { ThemeProvider, useTheme } from "./lib/theme";
import type { ConnectionState } from "./lib/reconnect";
import { AssetPage } from "./features/asset/AssetPage";
import { ConfirmEmail } from "./features/auth/ConfirmEmail";
import { ForgotPassword, ResetPassword } from "./features/auth/PasswordReset";
import { SignIn } from "./features/auth/SignIn";
import { SignUp } from "./features/auth/SignUp";
import { Documents } from "./features/documents/Documents";
import { Funds } from "./features/funds/Funds";
import { Home } from "./features/home/Home";
import { Market } from "./features/market/Market";
import { Search } from "./features/market/Search";
import { Orders } from "./features/orders/Orders";
import { Settings } from "./features/settings/Settings";
import { Authorize } from "./features/partners/Authorize";
import { HelpArticlePage, HelpCentre } from "./features/support/Help";
import { StaffQueue } from "./features/support/StaffDesk";
import { SupportHome } from "./features/support/Support";
import { TicketPage } from "./features/support/TicketChat";
import { Watchlists } from "./features/watchlists/Watchlists";
import { Bell } from "./features/notifications/Bell";
import { Inbox } from "./features/notifications/Inbox";
import { ComplianceQueue } from "./features/kyc/ComplianceQueue";
import { VerifyIdentity } from "./features/kyc/Identity";
import { NotificationsProvider } from "./features/notifications/live";
import { Skeleton } from "./ui/components";

function ConnectionBanner() {
  const { t } = useTranslation();
  const { connection } = useAuth();
  const [state, setState] = useState<ConnectionState>(connection?.status.current ?? "connecting");
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => connection?.status.subscribe(setState), [connection]);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  }, []);
  if (online && state !== "reconnecting") return null;
  return <div className="banner" role="status" data-testid="reconnecting">{online ? t("app.reconnecting") : t("app.offline")}</div>;
}

const NAV = [
  { to: "/", key: "home", icon: "⌂" },
  { to: "/market", key: "market", icon: "◔" },
  { to: "/orders", key: "orders", icon: "≡" },
  { to: "/funds", key: "funds", icon: "$" },
  { to: "/watchlists", key: "watchlists", icon: "★" },
  { to: "/documents", key: "documents", icon: "▤" },
  { to: "/settings", key: "settings", icon: "⚙" },
];

function Shell({ children }: { children: ReactNode }) {
  const { t } = useTranslation();
  const { user, signOut, setUser } = useAuth();
  const { theme, setTheme } = useTheme();
  const navigate = useNavigate();
  const [me, refetchMe] = useQuery({ query: MeDocument });
  useEffect(() => {
    if (me.data?.me) {
      setUser(me.data.me);
      applyLanguage(me.data.me.preferredLanguage);
    }
  }, [me.data, setUser]);
  // Back to this tab: the profile may have changed elsewhere (an email confirmed from its link).
  useEffect(() => {
    const onFocus = () => refetchMe({ requestPolicy: "network-only" });
    window.addEventListener("focus", onFocus);
    return () => window.removeEventListener("focus", onFocus);
  }, [refetchMe]);

  return (
    <div className="app">
      <a href="#main" className="skip-link">{t("app.skip")}</a>
      <header className="topbar">
        <Link to="/" className="brand" aria-label={t("app.homeAria")}>
          <span className="brand-mark" aria-hidden="true" />
          <span className="brand-name">Bourse</span>
        </Link>
        <Search />
        <nav className="topnav" aria-label={t("app.mainNav")}>
          {NAV.map((n) => (
            <NavLink key={n.to} to={n.to} end={n.to === "/"} className="topnav-link">{t(`nav.${n.key}`)}</NavLink>
          ))}
        </nav>
        <div className="topbar-actions">
          <button type="button" className="icon-button" onClick={() => setTheme(theme === "dark" ? "light" : "dark")} aria-label={theme === "dark" ? t("app.lightMode") : t("app.darkMode")}>
            <span aria-hidden="true">{theme === "dark" ? "☀" : "☾"}</span>
          </button>
          {user?.role === "COMPLIANCE" || user?.role === "ADMIN" ? (
            <NavLink to="/staff/compliance" className="btn btn-ghost staff-link" data-testid="compliance-link" aria-label={t("nav.compliance")}>
              <span className="hide-sm">{t("nav.compliance")}</span><span className="show-sm" aria-hidden="true">⚖</span>
            </NavLink>
          ) : null}
          {user?.role === "SUPPORT" || user?.role === "ADMIN" ? (
            <NavLink to="/staff" className="btn btn-ghost staff-link" data-testid="staff-desk-link" aria-label={t("nav.staff")}>
              <span className="hide-sm">{t("nav.staff")}</span><span className="show-sm" aria-hidden="true">☷</span>
            </NavLink>
          ) : null}
          <Bell />
          <NavLink to="/help" className="icon-link" aria-label={t("titles.help")} title={t("titles.help")}><span aria-hidden="true">?</span></NavLink>
          <span className="user-chip hide-sm" title={user?.email}>{user?.username}</span>
          <button type="button" className="btn btn-ghost" onClick={async () => { await signOut(); navigate("/sign-in", { replace: true }); }}>{t("app.signOut")}</button>
        </div>
      </header>
      <ConnectionBanner />
      <main id="main" className="content">{children}</main>
      <nav className="tabbar" aria-label={t("app.tabNav")}>
        {NAV.map((n) => (
          <NavLink key={n.to} to={n.to} end={n.to === "/"} className="tab">
            <span aria-hidden="true" className="tab-icon">{n.icon}</span>
            <span>{t(`nav.${n.key}`)}</span>
          </NavLink>
        ))}
      </nav>
      <footer className="footer muted small">
        {t("app.footer")} · {t("asset.chartsBy")} <a href="https://www.tradingview.com/" target="_blank" rel="noopener noreferrer">TradingView</a>
      </footer>
    </div>
  );
}

function Private({ children }: { children: ReactNode }) {
  const { state } = useAuth();
  const location = useLocation();
  if (state === "loading") return <div className="boot"><Skeleton lines={3} /></div>;
  if (state === "anonymous") return <Navigate to="/sign-in" replace state={{ from: location.pathname + location.search }} />;
  return (
    <OrderUpdatesProvider>
      <NotificationsProvider>
        <Shell>{children}</Shell>
      </NotificationsProvider>
    </OrderUpdatesProvider>
  );
}

/** A page for the signed-out; once signed in, on to `after` (sign-up: the identity step). */
function Public({ children, after = "/" }: { children: ReactNode; after?: string }) {
  const { state } = useAuth();
  if (state === "loading") return <div className="boot"><Skeleton lines={3} /></div>;
  if (state === "signed-in") return <Navigate to={after} replace />;
  return <>{children}</>;
}

function TitleSync() {
  const { t, i18n } = useTranslation();
  const location = useLocation();
  useEffect(() => {
    document.documentElement.lang = i18n.language;
    const first = location.pathname.split("/")[1] ?? "";
    const second = location.pathname.split("/")[2] ?? "";
    const key = first === "staff" && second === "compliance" ? "compliance" : ({ "verify-identity": "verify", "": "home", help: "help", support: "support", staff: "staff", notifications: "notifications", market: "market", orders: "orders", funds: "funds", watchlists: "watchlists", documents: "documents", settings: "settings", asset: "asset", "sign-in": "signIn", "sign-up": "signUp", "forgot-password": "forgot", "reset-password": "reset", "confirm-email": "confirmEmail" } as Record<string, string>)[first] ?? "home";
    const extra = first === "asset" ? ` ${location.pathname.split("/")[2]?.toUpperCase() ?? ""}` : "";
    document.title = `${t(`titles.${key}`)}${extra} · Bourse`;
  }, [location, i18n.language, t]);
  return null;
}

export function App() {
  const { t } = useTranslation();
  return (
    <ThemeProvider>
      <BrowserRouter>
        <AuthProvider>
          <TitleSync />
          <Routes>
            <Route path="/sign-in" element={<Public><SignIn /></Public>} />
            <Route path="/sign-up" element={<Public after="/verify-identity"><SignUp /></Public>} />
            <Route path="/forgot-password" element={<Public><ForgotPassword /></Public>} />
            <Route path="/reset-password" element={<ResetPassword />} />
            <Route path="/confirm-email" element={<ConfirmEmail />} />
            <Route path="/" element={<Private><Home /></Private>} />
            <Route path="/asset/:symbol" element={<Private><AssetPage /></Private>} />
            <Route path="/orders" element={<Private><Orders /></Private>} />
            <Route path="/funds" element={<Private><Funds /></Private>} />
            <Route path="/watchlists" element={<Private><Watchlists /></Private>} />
            <Route path="/documents" element={<Private><Documents /></Private>} />
            <Route path="/market" element={<Private><Market /></Private>} />
            <Route path="/settings" element={<Private><Settings /></Private>} />
            <Route path="/oauth/authorize" element={<Private><Authorize /></Private>} />
            <Route path="/help" element={<Private><HelpCentre /></Private>} />
            <Route path="/help/:slug" element={<Private><HelpArticlePage /></Private>} />
            <Route path="/support" element={<Private><SupportHome /></Private>} />
            <Route path="/support/:id" element={<Private><TicketPage /></Private>} />
            <Route path="/staff" element={<Private><StaffQueue /></Private>} />
            <Route path="/staff/compliance" element={<Private><ComplianceQueue /></Private>} />
            <Route path="/verify-identity" element={<Private><VerifyIdentity /></Private>} />
            <Route path="/notifications" element={<Private><Inbox /></Private>} />
            <Route path="*" element={<main className="page" id="main"><h1>{t("app.notFound")}</h1><Link to="/">{t("nav.home")}</Link></main>} />
          </Routes>
        </AuthProvider>
      </BrowserRouter>
    </ThemeProvider>
  );
}
