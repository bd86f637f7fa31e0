// Replacing an order and placing a trailing stop, end to end in real headless Chromium
// (Debian's, via playwright-core). Driven by tests/web/test_replace_browser.py, which lists the
// asset and creates the funded customer. Same protocol as flow.mjs: one JSON object per line
// ({"step", "ok"}; {"axe", "violations"}; {"fail", "step", "error"}).
// Usage: node e2e/replace.mjs --base-url URL --out DIR --email EMAIL --password P --symbol SYM
import { join } from "node:path";
import { args, audit, BASE, launch, OUT, problems, reportFailure, step, wholeWords } from "./harness.mjs";

const SYM = args.symbol;

let shot = 0;
async function snap(page, name) {
  shot += 1;
  await page.screenshot({ path: join(OUT, `replace-${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
  await wholeWords(page, `replace ${name}`);
}

const browser = await launch();
let page;
let code = 0;
try {
  const context = await browser.newContext({ baseURL: BASE, locale: "en-US", viewport: { width: 1366, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  await step("sign in", async () => {
    await page.goto("/sign-in");
    await page.getByLabel("Email").fill(args.email);
    await page.getByLabel("Password").fill(args.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${BASE}/`);
  });

  await step("a resting limit buy of 2 from the ticket", async () => {
    await page.goto(`/asset/${SYM}`);
    await page.getByLabel("Order type").selectOption("LIMIT");
    await page.getByLabel("Shares", { exact: true }).fill("2");
    await page.getByLabel("Limit price").fill("90");
    await page.getByRole("button", { name: "Review order" }).click();
    await page.getByRole("button", { name: "Place Buy order" }).click();
    await page.getByTestId("order-status-text").getByText("Open", { exact: true }).waitFor();
  });

  await step("replace it from the orders page: a new total quantity of 3", async () => {
    await page.goto("/orders");
    const row = page.locator('[data-testid="orders-table"] tr[data-status="PENDING"]').first();
    await row.waitFor();
    await row.getByRole("button", { name: `Replace ${SYM} order` }).click();
    const dialog = page.getByTestId("replace-dialog");
    await dialog.waitFor();
    await audit(page, "replace dialog");
    await snap(page, "dialog");
    await dialog.getByLabel("New total quantity").fill("3");
    await dialog.getByRole("button", { name: "Replace order" }).click();
    await page.getByText(`Your ${SYM} order was replaced.`).waitFor();
    await page.locator('[data-testid="orders-table"] tr[data-status="PENDING"] td.num').first().getByText("3", { exact: true }).waitFor();
    await snap(page, "replaced");
  });

  await step("a replace the account cannot pay for is refused in the dialog", async () => {
    const row = page.locator('[data-testid="orders-table"] tr[data-status="PENDING"]').first();
    await row.getByRole("button", { name: `Replace ${SYM} order` }).click();
    const dialog = page.getByTestId("replace-dialog");
    await dialog.getByLabel("New total quantity").fill("500");
    await dialog.getByRole("button", { name: "Replace order" }).click();
    await dialog.getByRole("alert").first().waitFor();
    await snap(page, "refused");
    await dialog.getByRole("button", { name: "Keep order" }).click();
    await dialog.waitFor({ state: "detached" });
  });

  await step("a trailing stop buy by percentage from the ticket", async () => {
    await page.goto(`/asset/${SYM}`);
    await page.getByLabel("Order type").selectOption("TRAILING_STOP");
    await page.getByLabel("Shares", { exact: true }).fill("1");
    await page.getByLabel("Trail", { exact: true }).fill("5");
    await audit(page, "ticket trailing stop");
    await page.getByRole("button", { name: "Review order" }).click();
    await page.getByTestId("review-trail").getByText("5 %").waitFor();
    await page.getByRole("button", { name: "Place Buy order" }).click();
    await page.getByTestId("order-status-text").getByText("Open", { exact: true }).waitFor();
    await page.goto("/orders");
    await page.locator('[data-testid="orders-table"]').getByText(/Trailing stop/).first().waitFor();
    await page.locator('[data-testid="orders-table"]').getByText(/trailing 5 %/).first().waitFor();
    await snap(page, "trailing");
  });
  if (problems.length) throw new Error(problems.join("\n"));
} catch (error) {
  reportFailure(error);
  if (page) await page.screenshot({ path: join(OUT, "replace-FAILED.png"), fullPage: true }).catch(() => undefined);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
