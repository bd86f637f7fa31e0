// The end-to-end flow in real headless Chromium (Debian's, via playwright-core), driven by
// tests/web/test_browser.py against the whole platform. Protocol on stdout: one JSON object per
// line ({"step", "ok"} as each step passes; {"need": "totp", "secret"} asks the driver for a
// TOTP code, answered on stdin; {"fail", "step", "error"} then exit 1; e2e/harness.mjs).
// Usage: node e2e/flow.mjs --base-url URL --out DIR [--only desktop|phone]
import { join } from "node:path";
import { args, ask, audit, BASE, launch, OUT, problems, reportFailure, say, step, wholeWords } from "./harness.mjs";

async function totp(secret) {
  return ask({ need: "totp", secret });
}
/** Asks the driver for the token mailed to `address` (the driver reads the test's SMTP server). */
async function mailedToken(address) {
  return ask({ need: "email-token", address });
}
/** Asks the driver to kill the API process and start it again; resolves once it is back. */
async function restartApi() {
  await ask({ need: "restart-api" });
}

let shot = 0;
let activePage = null;
const pages = {};
async function snap(page, label, name) {
  shot += 1;
  await page.evaluate(() => window.scrollTo(0, 0));
  // Phones: what the screen shows (a full-page capture would draw the fixed tab bar mid-page).
  await page.screenshot({ path: join(OUT, `${label}-${String(shot).padStart(2, "0")}-${name}.png`), fullPage: label !== "phone" });
  await wholeWords(page, `${label} ${name}`);
}

/** Money text like "$1,234.56" or "1.234,56 US$" as a plain decimal string. */
function money(text, locale = "en") {
  let t = text.replace(/[^\d.,-]/g, "");
  t = locale === "es" ? t.replace(/\./g, "").replace(",", ".") : t.replace(/,/g, "");
  return Number(t);
}

async function nav(page, name) {
  await page.getByRole("link", { name, exact: true }).first().click();
}

async function flow(browser, label, contextOptions) {
  const context = await browser.newContext({ ...contextOptions, baseURL: BASE, locale: "en-US", serviceWorkers: "allow" });
  const page = await context.newPage();
  activePage = page;
  pages[label] = page;
  page.on("pageerror", (e) => problems.push(`${label}: page error: ${e.message}`));
  page.on("console", (m) => {
    const text = m.text();
    if (/Content Security Policy|Refused to (load|execute|apply|connect)/i.test(text)) problems.push(`${label}: CSP: ${text} at ${JSON.stringify(m.location())} on ${page.url()}`);
  });
  page.setDefaultTimeout(15_000);
  const user = `${label}${Date.now().toString(36)}`;
  const email = `${user}@example.com`;
  const password = "Correct-Horse-Battery-9";
  let secret = "";

  await step(`${label}: sign up`, async () => {
    await page.goto("/sign-up");
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await audit(page, `${label} sign-up`);
    await snap(page, label, "sign-up");
    await page.getByRole("button", { name: "Create account" }).click();
    // Onboarding: identity verification (KYC) comes next; trading and withdrawals need it.
    await page.waitForURL(`${BASE}/verify-identity`);
    await page.getByRole("heading", { name: "Verify your identity" }).waitFor();
    await page.getByLabel("Legal first name").fill("Ada");
    await page.getByLabel("Legal last name").fill(`Lovelace${label}`);
    await page.getByLabel("Date of birth").fill("1985-12-10");
    await page.getByLabel("Street address").fill("12 St James's Square");
    await page.getByLabel("City").fill("Springfield");
    await page.getByLabel("State or region").fill("IL");
    await page.getByLabel("ZIP or postal code").fill("62701");
    await page.getByLabel("Social Security number or ITIN").fill("666-12-3456");
    await page.getByRole("button", { name: "Verify my identity" }).click();
    await page.getByText("Enter a valid Social Security number or ITIN").first().waitFor();
    await audit(page, `${label} verify identity (error)`);
    await snap(page, label, "verify-identity-error");
    const ssn = `${String(100 + Math.floor(Math.random() * 500))}-${String(10 + Math.floor(Math.random() * 89))}-${String(1000 + Math.floor(Math.random() * 8999))}`;
    await page.getByLabel("Social Security number or ITIN").fill(ssn);
    await page.getByRole("button", { name: "Verify my identity" }).click();
    await page.getByText("Your identity is verified").waitFor();
    await audit(page, `${label} verify identity (verified)`);
    await snap(page, label, "verify-identity-done");
    await page.getByRole("button", { name: "Continue to your account" }).click();
    await page.waitForURL(`${BASE}/`);
    await page.getByTestId("total-value").waitFor();
    await page.getByText("You don't own anything yet").waitFor();
    await page.evaluate(() => { window.__noReload = "home"; });
    await audit(page, `${label} home (empty)`);
    await snap(page, label, "home-empty");
  });

  await step(`${label}: enable 2FA`, async () => {
    await nav(page, "Settings");
    // The identity card: verified, the tax id masked to its last four digits.
    await page.getByTestId("kyc-status").getByText("Verified").waitFor();
    if (!/\*\*\*-\*\*-\d{4}/.test(await page.getByTestId("identity-card").textContent())) throw new Error("no masked tax id in Settings");
    await page.getByRole("button", { name: "Set up two-step verification" }).click();
    secret = (await page.getByTestId("totp-secret").textContent()).trim();
    await page.getByRole("img", { name: "QR code for your authenticator app" }).waitFor();
    await audit(page, `${label} settings (2FA setup)`);
    await snap(page, label, "settings-2fa");
    await page.getByLabel("Authentication code").fill(await totp(secret));
    await page.getByRole("button", { name: "Turn on" }).click();
    await page.getByTestId("recovery-codes").waitFor();
    await snap(page, label, "recovery-codes");
  });

  await step(`${label}: sign out`, async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in/);
    await page.getByRole("heading", { name: "Welcome back" }).waitFor();
    // Back to a private page: the sign-in page again, nothing of the session left.
    await page.goBack();
    await page.getByRole("heading", { name: "Welcome back" }).waitFor();
    if ((await page.content()).includes(user)) throw new Error("the signed-out page still shows the user's data");
    await audit(page, `${label} sign-in`);
  });

  await step(`${label}: sign in with a TOTP code`, async () => {
    await page.goto("/sign-in");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    const code = page.getByLabel("Authentication code");
    await code.waitFor();
    await audit(page, `${label} sign-in (code)`);
    await snap(page, label, "sign-in-otp");
    await code.fill(await totp(secret));
    await page.getByRole("button", { name: "Verify and sign in" }).click();
    await page.getByTestId("total-value").waitFor();
    await page.evaluate(() => { window.__noReload = "signed-in"; });
  });

  if (label === "desktop") await step(`${label}: change the email, confirmed from the new address`, async () => {
    const newEmail = `${user}.new@example.com`;
    await nav(page, "Settings");
    await page.getByRole("textbox", { name: "Email", exact: true }).fill(newEmail);
    await page.getByRole("button", { name: "Save changes" }).first().click();
    await page.getByText(`Confirm ${newEmail}`).waitFor();
    await audit(page, `${label} settings (email pending)`);
    await snap(page, label, "settings-email-pending");
    // The link in the mail, opened in another tab of the same browser.
    const mail = await context.newPage();
    await mail.goto(`/confirm-email?token=${encodeURIComponent(await mailedToken(newEmail))}`);
    await mail.getByRole("button", { name: "Confirm email" }).click();
    await mail.getByText("Your email is changed").waitFor();
    await audit(mail, `${label} confirm-email`);
    await snap(mail, label, "confirm-email");
    await mail.close();
    // Back on the first tab, the profile shows the confirmed address, nothing pending.
    await page.bringToFront();
    await page.evaluate(() => window.dispatchEvent(new Event("focus")));
    await page.waitForFunction((expected) => document.querySelector("input[type=email]")?.value === expected, newEmail);
    if (await page.getByText(`Confirm ${newEmail}`).count()) throw new Error("the pending-email notice outlived the confirmation");
    // The second tab shared this one's session (no second sign-in): one device listed.
    await page.getByTestId("sessions").getByText("This device").waitFor();
    await snap(page, label, "settings-devices");
    // A copy of everything held about the user, made by the worker.
    await page.getByRole("button", { name: "Download my data" }).click();
    await page.getByTestId("export-download").waitFor({ timeout: 30_000 });
    await audit(page, `${label} settings (data export ready)`);
    await snap(page, label, "settings-export");
  });

  let buyingPower0 = 0;
  await step(`${label}: deposit $1,000`, async () => {
    await nav(page, "Funds");
    await page.getByLabel("Amount").fill("1000");
    await page.getByRole("button", { name: "Deposit", exact: true }).click();
    await page.getByText("$1,000.00 deposited").waitFor();
    await page.getByTestId("funds-buying-power").getByText("$1,000.00").waitFor();
    await page.getByTestId("transactions").getByText("Deposit").waitFor();
    await audit(page, `${label} transfers`);
    await snap(page, label, "transfers");
  });

  await step(`${label}: buy $100 of BTC-USD by dollar amount`, async () => {
    const search = page.getByRole("combobox", { name: "Search assets" });
    await search.fill("BTC");
    await page.getByRole("option", { name: /BTC-USD/ }).waitFor();
    await search.press("ArrowDown");
    await search.press("Enter");
    await page.waitForURL(/\/asset\/BTC-USD/);
    await page.getByRole("heading", { name: "Bitcoin" }).waitFor();
    await page.waitForFunction(() => /\d/.test(document.querySelector('[data-testid="bid"]')?.textContent ?? ""));
    await page.getByRole("figure", { name: "BTC-USD price chart" }).waitFor();
    await audit(page, `${label} asset`);
    await snap(page, label, "asset");
    await page.getByLabel("Amount", { exact: true }).fill("100");
    await page.getByRole("button", { name: "Review order" }).click();
    await page.getByTestId("order-review").waitFor();
    await audit(page, `${label} order review`);
    await page.getByRole("button", { name: "Place Buy order" }).click();
    await page.getByTestId("order-result").waitFor();
    // Live from orderUpdates: no reload, no polling of the order.
    await page.getByTestId("order-status-text").getByText("Filled", { exact: true }).waitFor({ timeout: 20_000 });
    await page.waitForFunction(() => /[1-9]/.test(document.querySelector('[data-testid="order-filled"]')?.textContent ?? ""));
    await snap(page, label, "order-filled");
  });

  await step(`${label}: the holding appears on home with no reload`, async () => {
    await nav(page, "Home");
    await page.getByTestId("holdings").locator('[data-asset="BTC-USD"]').waitFor();
    const value = money(await page.getByTestId("holdings").locator('[data-asset="BTC-USD"] [data-testid="holding-value"]').textContent());
    if (!(value > 90 && value < 110)) throw new Error(`BTC-USD holding worth ${value}, expected about $100`);
    buyingPower0 = money(await page.getByTestId("buying-power").locator(".stat-value").textContent());
    if (!(buyingPower0 > 890 && buyingPower0 < 910)) throw new Error(`buying power ${buyingPower0} after $100 buy of $1,000`);
    if ((await page.evaluate(() => window.__noReload)) !== "signed-in") throw new Error("the page reloaded");
    await audit(page, `${label} home`);
    await snap(page, label, "home");
  });

  await step(`${label}: a resting limit order, cancelled: its hold is released`, async () => {
    await page.getByTestId("holdings").getByRole("link", { name: /BTC-USD/ }).click();
    await page.waitForFunction(() => /\d/.test(document.querySelector('[data-testid="last-price"]')?.textContent ?? ""));
    const last = money(await page.getByTestId("last-price").textContent());
    const limit = Math.floor(last * 0.7);
    await page.getByLabel("Order type").selectOption("LIMIT");
    await page.getByLabel("Shares", { exact: true }).fill("0.001");
    await page.getByLabel("Limit price").fill(String(limit));
    await page.getByRole("button", { name: "Review order" }).click();
    await page.getByRole("button", { name: "Place Buy order" }).click();
    await page.getByTestId("order-status-text").getByText("Open", { exact: true }).waitFor();
    await nav(page, "Home");
    const held = limit * 0.001;
    await page.waitForFunction((want) => {
      const text = document.querySelector('[data-testid="buying-power"] .stat-value')?.textContent ?? "";
      return Math.abs(Number(text.replace(/[^\d.]/g, "")) - want) < 0.02;
    }, buyingPower0 - held);
    await nav(page, "Orders");
    const row = page.locator('[data-testid="orders-table"] tr[data-status="PENDING"]').first();
    await row.waitFor();
    await audit(page, `${label} orders`);
    await snap(page, label, "orders-open");
    await row.getByRole("button", { name: "Cancel BTC-USD order" }).click();
    const dialog = page.getByRole("alertdialog", { name: "Cancel this order?" });
    await dialog.waitFor();
    await audit(page, `${label} cancel dialog`);
    await snap(page, label, "cancel-confirm");
    await dialog.getByRole("button", { name: "Cancel order" }).click();
    await page.getByText("Your BTC-USD order was cancelled.").waitFor();
    await page.getByText("No open orders").waitFor();
    await page.getByRole("radio", { name: "Past" }).click();
    await page.locator('[data-testid="orders-table"] tr[data-status="CANCELLED"]').first().waitFor();
    await page.locator('[data-testid="orders-table"] tr[data-status="EXECUTED"]').first().waitFor();
    await snap(page, label, "orders-past");
    await nav(page, "Home");
    await page.waitForFunction((want) => {
      const text = document.querySelector('[data-testid="buying-power"] .stat-value')?.textContent ?? "";
      return Math.abs(Number(text.replace(/[^\d.]/g, "")) - want) < 0.005;
    }, buyingPower0);
  });

  await step(`${label}: a weekly recurring investment, set up and paused`, async () => {
    await nav(page, "Orders");
    const form = page.getByTestId("recurring-form");
    await form.getByLabel("Asset").fill("BTC-USD");
    await form.getByLabel("Amount each time").fill("25");
    await form.getByLabel("How often").selectOption("WEEKLY");
    await form.getByRole("button", { name: "Start investing" }).click();
    await page.getByText(/BTC-USD every week: set up\./).waitFor();
    const plan = page.getByTestId("recurring-list").locator('li[data-status="ACTIVE"]').first();
    await plan.getByText(/Next:/).waitFor();
    await audit(page, `${label} recurring`);
    await snap(page, label, "recurring");
    await plan.getByRole("button", { name: "Pause" }).click();
    await page.getByTestId("recurring-list").locator('li[data-status="PAUSED"]').getByText("Paused").waitFor();
    await page.getByTestId("recurring-list").locator('li[data-status="PAUSED"]').getByRole("button", { name: "Cancel the recurring investment in BTC-USD" }).click();
    await page.getByText("No recurring investments yet").waitFor();
    await nav(page, "Home");
  });

  await step(`${label}: add the asset to a watchlist`, async () => {
    await page.getByTestId("holdings").getByRole("link", { name: /BTC-USD/ }).click();
    await page.getByTestId("watch-toggle").click();
    await page.locator('[data-testid="watch-toggle"][aria-pressed="true"]').waitFor();
    await nav(page, "Watchlist");
    await page.getByTestId("watchlist").locator('[data-asset="BTC-USD"]').waitFor();
    await page.waitForFunction(() => /\d/.test(document.querySelector('[data-testid="watch-price"]')?.textContent ?? ""));
    await audit(page, `${label} watchlists`);
    await snap(page, label, "watchlists");
  });

  if (label === "desktop") await step(`${label}: the API restarts: a banner while reconnecting, then live again`, async () => {
    // Quote frames on each websocket the page opens after the restart.
    let fresh = 0;
    let after = false;
    page.on("websocket", (ws) => ws.on("framereceived", (f) => { if (after && String(f.payload).includes('"quotes"')) fresh += 1; }));
    const restarted = restartApi();
    await page.getByTestId("reconnecting").waitFor({ timeout: 20_000 });
    await snap(page, label, "reconnecting");
    await restarted;
    after = true;
    await page.getByTestId("reconnecting").waitFor({ state: "detached", timeout: 30_000 });
    const deadline = Date.now() + 15_000;
    while (fresh === 0 && Date.now() < deadline) await page.waitForTimeout(200);
    if (fresh === 0) throw new Error("no quote arrived after the reconnect: the subscription was not renewed");
  });

  await step(`${label}: documents: a statement prepared by the worker, ready to download`, async () => {
    await nav(page, "Documents");
    await page.getByRole("heading", { name: "Documents", level: 1 }).waitFor();
    await page.getByRole("button", { name: "Prepare document" }).click();
    await page.getByText("Your document is being prepared").waitFor();
    const row = page.getByTestId("documents").locator("tbody tr").first();
    await row.getByText("Ready").waitFor({ timeout: 30_000 });
    const href = await row.getByRole("link", { name: "Download" }).getAttribute("href");
    if (!href || !/X-Amz-Signature=/.test(href)) throw new Error(`no presigned download link: ${href}`);
    await audit(page, `${label} documents`);
    await snap(page, label, "documents");
    await page.getByRole("radio", { name: "Tax documents" }).click();
    await page.getByRole("button", { name: "Prepare document" }).waitFor();
    await snap(page, label, "documents-tax");
  });

  await step(`${label}: market summary`, async () => {
    // The rest of the run in the dark theme (axe checks its contrast too).
    await page.getByRole("button", { name: "Switch to dark theme" }).click();
    await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
    await audit(page, `${label} watchlists (dark)`);
    await nav(page, "Market");
    await page.getByText("Bourse index").waitFor();
    await page.getByText("Top gainers").waitFor();
    await audit(page, `${label} market`);
    await snap(page, label, "market");
  });

  await step(`${label}: switch to Spanish, same page translated with localised numbers`, async () => {
    await nav(page, "Home");
    await page.getByTestId("total-value").waitFor();
    await nav(page, "Settings");
    await page.getByLabel("Language").selectOption("es");
    await page.getByRole("heading", { name: "Ajustes" }).waitFor();
    await page.getByRole("heading", { name: "Preferencias" }).waitFor();
    await snap(page, label, "ajustes");
    await nav(page, "Inicio");
    await page.getByText("Valor total").waitFor();
    await page.getByText("Poder de compra").waitFor();
    const total = await page.getByTestId("total-value").locator(".stat-value").textContent();
    if (!/^\d[\d.]*,\d{2} ?US\$$/.test(total.replace(/\u00a0|\u202f/g, " ").trim())) throw new Error(`total value not in Spanish format: ${JSON.stringify(total)}`);
    if (!(money(total, "es") > 990 && money(total, "es") < 1010)) throw new Error(`total value ${total}, expected about 1.000 US$`);
    if ((await page.evaluate(() => document.documentElement.lang)) !== "es") throw new Error("html lang is not es");
    await audit(page, `${label} inicio`);
    await snap(page, label, "inicio");
    // The choice is the profile's: it follows the user to the next sign-in.
  });

  await step(`${label}: sign out`, async () => {
    await page.getByRole("button", { name: "Cerrar sesión" }).click();
    await page.waitForURL(/\/sign-in/);
    await page.getByRole("heading", { name: "Hola de nuevo" }).waitFor();
    await page.goto("/");
    await page.waitForURL(/\/sign-in/);
    if ((await page.content()).includes(user)) throw new Error("private data after sign-out");
    await snap(page, label, "signed-out");
  });

  if (label === "phone") {
    await step(`${label}: installable PWA (manifest valid, service worker registered)`, async () => {
      const cdp = await context.newCDPSession(page);
      const manifest = await cdp.send("Page.getAppManifest");
      if (manifest.errors.length) throw new Error(`manifest errors: ${JSON.stringify(manifest.errors)}`);
      const data = JSON.parse(manifest.data ?? "{}");
      if (data.display !== "standalone" || !data.icons?.some((i) => i.sizes === "512x512")) throw new Error("manifest lacks standalone display or a 512px icon");
      const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
      if (scope !== `${BASE}/`) throw new Error(`service worker scope ${scope}`);
      const install = await cdp.send("Page.getInstallabilityErrors");
      say({ installability: install.installabilityErrors });
    });
  }
  await context.close();
}

const forgotAndReset = async (browser) => {
  const context = await browser.newContext({ baseURL: BASE, locale: "en-US" });
  const page = await context.newPage();
  pages.public = page;
  await step("public: password reset screens", async () => {
    await page.goto("/forgot-password");
    await page.getByRole("heading", { name: "Reset your password" }).waitFor();
    await audit(page, "forgot-password");
    await page.getByLabel("Email").fill("nobody@example.com");
    await page.getByRole("button", { name: "Email me a reset link" }).click();
    await page.getByText("a reset link is on its way").waitFor();
    await page.goto("/reset-password?token=not-a-token");
    await page.getByLabel("New password", { exact: true }).fill("Another-Good-Passw0rd");
    await page.getByLabel("Confirm new password").fill("Another-Good-Passw0rd");
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.getByText("This reset link is invalid or has expired").waitFor();
    await audit(page, "reset-password");
    await snap(page, "public", "reset-invalid");
  });
  await step("public: a revoked session lands on sign-in with nothing private left", async () => {
    const user = `revoked${Date.now().toString(36)}`;
    await page.goto("/sign-up");
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Email").fill(`${user}@example.com`);
    await page.getByLabel("Password").fill("Correct-Horse-Battery-9");
    await page.getByRole("button", { name: "Create account" }).click();
    // The identity step can wait: "Skip for now" goes home (trading and withdrawals wait too).
    await page.getByRole("heading", { name: "Verify your identity" }).waitFor();
    await page.getByRole("link", { name: "Skip for now" }).click();
    await page.getByTestId("total-value").waitFor();
    // Elsewhere, the session is revoked: its refresh token is rotated away and a password
    // change signs out every session, so the page's access token dies too.
    await page.evaluate(async () => {
      const gql = async (query, variables, token) => (await (await fetch("/graphql", { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify({ query, variables }) })).json()).data;
      const rotated = await gql("mutation($r: String!) { refreshToken(refreshToken: $r) { token } }", { r: localStorage.getItem("bourse.refreshToken") });
      await gql('mutation { changePassword(input: {currentPassword: "Correct-Horse-Battery-9", newPassword: "Another-Horse-Battery-10"}) { errors { code } } }', {}, rotated.refreshToken.token);
    });
    // The page's live streams (notifications, order updates) may notice the revocation first
    // and leave for sign-in on their own (replacing the current history entry); otherwise the
    // next navigation does.
    await page.getByRole("link", { name: "Orders", exact: true }).first().click({ timeout: 5_000 }).catch(() => undefined);
    await page.waitForURL(/\/sign-in/);
    await page.getByText("Your session ended. Please sign in again.").waitFor();
    if ((await page.content()).includes(user)) throw new Error("private data shown after the session was revoked");
    // Back: sign-in again (a private page sends it there) or the public page before the
    // session, depending on which of the two redirects happened; never the user's data.
    await page.goBack();
    await page.waitForLoadState();
    await page.waitForFunction(() => !location.pathname.match(/^\/(orders|funds|settings|watchlists|documents)?$/) || location.pathname === "/sign-in");
    if ((await page.content()).includes(user)) throw new Error("private data shown after going back");
    await snap(page, "public", "revoked");
  });
  await context.close();
};

const browser = await launch();
let code = 0;
try {
  const only = args.only;
  // One run after the other: side by side was no faster on a 2-core machine, and flakier.
  if (!only || only === "desktop") await flow(browser, "desktop", { viewport: { width: 1366, height: 900 } });
  if (!only || only === "phone") await flow(browser, "phone", { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true });
  if (!only) await forgotAndReset(browser);
  if (problems.length) throw new Error(problems.join("\n"));
} catch (error) {
  reportFailure(error);
  const failedPage = pages[String(error?.step ?? "").split(":")[0]] ?? activePage;
  if (failedPage) await failedPage.screenshot({ path: join(OUT, "FAILED.png"), fullPage: true }).catch(() => undefined);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
