// Notifications end to end in real headless Chromium (Debian's, via playwright-core): a price
// alert created on the asset page fires while the page is open and the bell's badge updates
// with no reload; the inbox, read marks, alert creation from a watchlist row and the
// notification settings. Driven by tests/web/test_notifications_browser.py, which creates the
// accounts, the asset and the watchlist and pushes the price tick when asked. Same protocol as
// flow.mjs: one JSON object per line ({"step", "ok"}; {"axe", "violations"}; {"need": "tick",
// ...} answered on stdin; {"fail", "step", "error"} then exit 1).
// Usage: node e2e/notifications.mjs --base-url URL --out DIR --password P --asset SYMBOL
//   --desktop EMAIL --phone EMAIL [--only desktop|phone]
import { join } from "node:path";
import { args, ask, audit, BASE, launch, OUT, problems, reportFailure, step } from "./harness.mjs";

const ASSET = args.asset;

/** Asks the driver to publish a quote of the asset at `price` (as the market-data feed does). */
async function tick(price) {
  await ask({ need: "tick", asset: ASSET, price });
}


async function run(browser, label, email, options, level) {
  const context = await browser.newContext({ baseURL: BASE, locale: "en-US", ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`${label}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/.test(m.text())) problems.push(`${label}: CSP: ${m.text()}`);
  });
  let shot = 0;
  const phone = label === "phone";
  const snap = async (name) => {
    shot += 1;
    await page.screenshot({ path: join(OUT, `notifications-${label}-${String(shot).padStart(2, "0")}-${name}.png`), fullPage: !phone });
  };
  const bell = page.getByTestId("bell");
  /** Nothing wider than the screen (a wider page pushes the phone's fixed tab bar away). */
  const fits = async (screen) => {
    const { scroll, inner, wide } = await page.evaluate(() => {
      const w = window.innerWidth;
      const over = [...document.querySelectorAll("body *")]
        .filter((e) => e.getBoundingClientRect().right > w + 0.5)
        .slice(-3)
        .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join(".")} "${(e.textContent ?? "").trim().slice(0, 40)}" → ${Math.round(e.getBoundingClientRect().right)}px`);
      return { scroll: document.documentElement.scrollWidth, inner: w, wide: over };
    });
    if (scroll > inner) throw new Error(`${screen} is ${scroll}px wide on a ${inner}px screen: ${wide.join("; ")}`);
  };

  await step(`${label}: sign in`, async () => {
    await page.goto("/sign-in");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(args.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${BASE}/`);
    await bell.waitFor();
    if (await page.getByTestId("bell-count").count()) throw new Error("a new account has unread notifications");
  });

  await step(`${label}: create a price alert on the asset page`, async () => {
    await page.goto(`/asset/${ASSET}`);
    const form = page.getByTestId("alert-form");
    await form.scrollIntoViewIfNeeded();
    await form.getByLabel("Alert me when").selectOption("PRICE_ABOVE");
    await form.getByLabel("Price").fill(level);
    await form.getByRole("button", { name: "Create alert" }).click();
    const shown = String(Number(level)); // the server's threshold, shown without padding zeros
    await page.getByText(`Alert set: at or above ${shown}.`).waitFor();
    await page.getByTestId("price-alerts").getByText(`at or above ${shown}`).waitFor();
    await audit(page, `${label} asset page with alerts`);
    await fits("the asset page");
    await snap("alert-created");
  });

  await step(`${label}: an alert already satisfied is refused with the reason`, async () => {
    const form = page.getByTestId("alert-form");
    await form.getByLabel("Alert me when").selectOption("PRICE_BELOW");
    await form.getByLabel("Price").fill(level);
    await form.getByRole("button", { name: "Create alert" }).click();
    await form.getByText("Enter a level the price hasn't reached yet").first().waitFor();
  });

  await step(`${label}: the alert fires while the page is open and the bell updates without a reload`, async () => {
    const navigations = [];
    page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
    const above = (Number(level) + 0.5).toFixed(2);
    await tick(above);
    await page.getByTestId("bell-count").filter({ hasText: "1" }).waitFor({ timeout: 20_000 });
    if (navigations.length) throw new Error(`the page navigated: ${navigations.join(", ")}`);
    await bell.scrollIntoViewIfNeeded();
    await snap("bell-badge");
  });

  await step(`${label}: the inbox lists it, and marking it read clears the badge`, async () => {
    await bell.click();
    await page.waitForURL(`${BASE}/notifications`);
    const item = page.getByTestId("inbox").locator("[data-kind=PRICE_ALERT]");
    await item.first().waitFor();
    await item.getByText(`${ASSET} at or above`).first().waitFor();
    await audit(page, `${label} inbox`);
    await fits("the inbox");
    await snap("inbox");
    await page.getByTestId("mark-all-read").click();
    await page.getByTestId("inbox").locator("[data-read=yes]").first().waitFor();
    await page.getByTestId("bell-count").waitFor({ state: "detached" });
  });

  await step(`${label}: an alert from a watchlist row`, async () => {
    await page.goto("/watchlists");
    const row = page.locator(`[data-asset="${ASSET}"]`).first();
    await row.getByRole("button", { name: `Price alert for ${ASSET}` }).click();
    const form = row.getByTestId("alert-form");
    await form.getByLabel("Alert me when").selectOption("PRICE_BELOW");
    await form.getByLabel("Price").fill("1.00");
    await form.getByRole("button", { name: "Create alert" }).click();
    await row.getByText("Alert set: at or below 1").waitFor();
    await audit(page, `${label} watchlist with an alert form`);
    await fits("the watchlist");
    await snap("watchlist-alert");
  });

  await step(`${label}: notification settings (security locked on), saved`, async () => {
    await page.goto("/settings");
    const settings = page.getByTestId("notification-settings");
    await settings.scrollIntoViewIfNeeded();
    const securityEmail = settings.getByLabel("Security by Email");
    if (!(await securityEmail.isDisabled()) || !(await securityEmail.isChecked())) throw new Error("security email can be switched off");
    const orderEmail = settings.getByLabel("Order by Email");
    const before = await orderEmail.isChecked();
    await orderEmail.setChecked(!before);
    await settings.getByLabel("Quiet hours from").fill("22:00");
    await settings.getByLabel("Quiet hours until").fill("07:00");
    await settings.getByLabel("Time zone").fill("Europe/Madrid");
    await settings.getByRole("button", { name: "Save changes" }).click();
    await settings.getByText("Notification settings saved.").waitFor();
    await page.reload();
    await page.getByTestId("notification-settings").getByLabel("Order by Email").waitFor();
    if ((await page.getByTestId("notification-settings").getByLabel("Order by Email").isChecked()) === before) throw new Error("the change did not stick");
    await audit(page, `${label} settings`);
    await fits("settings");
    await page.getByTestId("notification-settings").scrollIntoViewIfNeeded();
    await snap("settings");
  });

  await step(`${label}: in Spanish, settings and the inbox fit the screen and the navigation still works`, async () => {
    await page.goto("/settings");
    await page.getByLabel("Language").selectOption("es");
    await page.getByRole("heading", { name: "Ajustes" }).waitFor();
    await page.getByTestId("notification-settings").getByLabel("Evento corporativo por Correo").waitFor();
    await fits("settings in Spanish");
    await page.getByTestId("notification-settings").scrollIntoViewIfNeeded();
    await snap("ajustes");
    await page.getByRole("link", { name: "Inicio", exact: true }).first().click();
    await page.waitForURL(`${BASE}/`);
    await page.goto("/notifications");
    await page.getByRole("heading", { name: "Notificaciones" }).waitFor();
    await fits("the inbox in Spanish");
    await audit(page, `${label} notificaciones`);
    await snap("notificaciones");
  });
  await context.close();
}

const browser = await launch();
let code = 0;
try {
  const only = args.only;
  if (!only || only === "desktop") await run(browser, "desktop", args.desktop, { viewport: { width: 1280, height: 860 } }, "105.00");
  if (!only || only === "phone") await run(browser, "phone", args.phone, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true }, "107.00");
  if (problems.length) throw new Error(problems.join("; "));
} catch (error) {
  reportFailure(error);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
