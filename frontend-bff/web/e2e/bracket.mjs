// A bracket order from the ticket, end to end in real headless Chromium (Debian's, via
// playwright-core): the entry with its take-profit and stop-loss, the review, the placed
// order's legs and the orders page's, on a desktop in English and a phone in Spanish. Driven
// by tests/web/test_bracket_browser.py, which lists the asset and creates the two funded
// customers (the second prefers Spanish). Same protocol as flow.mjs.
// Usage: node e2e/bracket.mjs --base-url URL --out DIR --email E --email-es E --password P --symbol SYM
import { join } from "node:path";
import { args, audit, BASE, launch, OUT, problems, reportFailure, step, wholeWords } from "./harness.mjs";

const SYM = args.symbol;
const WORDS = {
  en: { orderType: "Order type", signIn: "Sign in", review: "Review order", submit: "Place Buy order", open: "Open" },
  es: { orderType: "Tipo de orden", signIn: "Iniciar sesión", review: "Revisar orden", submit: "Enviar orden de Comprar", open: "Abierta" },
};

let shot = 0;
async function snap(page, device, name) {
  shot += 1;
  await page.screenshot({ path: join(OUT, `bracket-${String(shot).padStart(2, "0")}-${device}-${name}.png`), fullPage: true });
  await wholeWords(page, `bracket ${name}`);
}

async function flow(browser, device, lang, email, options) {
  const w = WORDS[lang];
  const context = await browser.newContext({ baseURL: BASE, locale: lang === "es" ? "es-ES" : "en-US", ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  try {
    await step(`${device}: sign in`, async () => {
      await page.goto("/sign-in");
      await page.locator('input[name="email"]').fill(email);
      await page.locator('input[name="password"]').fill(args.password);
      await page.getByRole("button", { name: w.signIn }).click();
      await page.waitForURL(`${BASE}/`);
    });

    await step(`${device}: a bracket buy from the ticket`, async () => {
      await page.goto(`/asset/${SYM}`);
      await page.getByLabel(w.orderType).selectOption("LIMIT");
      await page.locator('input[name="amount"]').fill("2");
      await page.locator('input[name="limitPrice"]').fill("100");
      await page.getByTestId("bracket-toggle").check();
      await page.locator('input[name="takeProfit"]').fill("90");  // below the buy: refused early
      await page.locator('input[name="stopLoss"]').fill("95");
      await page.getByRole("button", { name: w.review }).click();
      await page.locator(".field-error").first().waitFor();
      await snap(page, device, "refused-early");
      await page.locator('input[name="takeProfit"]').fill("110");
      await audit(page, `${device} ticket bracket`);
      await snap(page, device, "ticket");
      await page.getByRole("button", { name: w.review }).click();
      await page.getByTestId("review-take-profit").waitFor();
      await page.getByTestId("review-stop-loss").waitFor();
      await snap(page, device, "review");
      await page.getByRole("button", { name: w.submit }).click();
      const legs = page.getByTestId("order-legs");
      await legs.locator('li[data-leg="take-profit"]').waitFor();
      await legs.locator('li[data-leg="stop-loss"]').waitFor();
      await page.getByTestId("order-status-text").getByText(w.open, { exact: true }).waitFor();
      await audit(page, `${device} placed bracket`);
      await snap(page, device, "placed");
    });

    await step(`${device}: the orders page shows the bracket's legs`, async () => {
      await page.goto("/orders");
      const table = page.getByTestId("orders-table");
      await table.getByTestId("order-class").first().waitFor();
      await table.locator('.legs-row li[data-leg="take-profit"]').first().waitFor();
      await table.locator('.legs-row li[data-leg="stop-loss"]').first().waitFor();
      await table.getByTestId("leg-of").first().waitFor();
      const width = options.viewport.width;
      const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
      if (scroll > width) throw new Error(`${device}: the orders page is ${scroll}px wide on a ${width}px screen`);
      await audit(page, `${device} orders with legs`);
      await snap(page, device, "orders");
    });
  } finally {
    await context.close();
  }
}

const browser = await launch();
let code = 0;
try {
  await flow(browser, "desktop", "en", args.email, { viewport: { width: 1366, height: 900 } });
  await flow(browser, "phone", "es", args["email-es"], { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true });
  if (problems.length) throw new Error(problems.join("\n"));
} catch (error) {
  reportFailure(error);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
