// The compliance queue end to end in real headless Chromium (Debian's, via playwright-core):
// a customer whose legal name matched the sanctions list waits in review (the transfer form
// says so), and a COMPLIANCE officer clears the case from the staff area, on a desktop and a
// phone. Driven by tests/web/test_compliance_browser.py, which creates both accounts and the
// case. Same protocol as flow.mjs: one JSON object per line.
// Usage: node e2e/compliance.mjs --base-url URL --out DIR --customer EMAIL --staff EMAIL --password P
import { join } from "node:path";
import { args, audit, BASE, launch, OUT, problems, reportFailure, step, wholeWords } from "./harness.mjs";

let shot = 0;
async function snap(page, name, fullPage = true) {
  shot += 1;
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(OUT, `compliance-${String(shot).padStart(2, "0")}-${name}.png`), fullPage });
  await wholeWords(page, `compliance ${name}`);
}

async function signedIn(browser, label, email, options) {
  const context = await browser.newContext({ baseURL: BASE, locale: "en-US", ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`${label}: page error: ${e.message}`));
  await page.goto("/sign-in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(args.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/`);
  return { context, page };
}

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const browser = await launch();
let code = 0;
try {
  await step("the customer in review: the transfer form and Settings say so", async () => {
    const { page, context } = await signedIn(browser, "customer", args.customer, { viewport: { width: 1280, height: 860 } });
    await page.goto("/funds");
    await page.getByTestId("kyc-notice").getByText("being reviewed").waitFor();
    await audit(page, "funds (identity in review)");
    await snap(page, "customer-funds-review");
    await page.goto("/settings");
    await page.getByTestId("kyc-status").getByText("Under review").waitFor();
    await snap(page, "customer-settings-review");
    await context.close();
  });

  await step("the officer opens the queue and clears the sanctions case with a note", async () => {
    const { page, context } = await signedIn(browser, "staff", args.staff, { viewport: { width: 1366, height: 900 } });
    await page.getByTestId("compliance-link").click();
    await page.waitForURL(`${BASE}/staff/compliance`);
    await page.getByRole("heading", { name: "Compliance queue" }).waitFor();
    const item = page.getByTestId("compliance-case").filter({ hasText: args.customer });
    await item.getByText("matches sanctions list entry").waitFor();
    await audit(page, "compliance queue");
    await snap(page, "queue-desktop");
    const clear = item.getByRole("button", { name: "Clear", exact: true });
    if (!(await clear.isDisabled())) throw new Error("a decision without a note was allowed");
    await item.getByLabel("Decision note").fill("Date of birth and nationality differ from the list entry.");
    await clear.click();
    await item.waitFor({ state: "detached" });
    await page.getByLabel("Status").selectOption("CLEARED");
    const done = page.getByTestId("compliance-case").filter({ hasText: args.customer });
    await done.getByText("Date of birth and nationality differ").waitFor();
    await snap(page, "queue-cleared");
    await context.close();
  });

  await step("on a phone: the queue and the customer, now verified", async () => {
    const { page, context } = await signedIn(browser, "staff-phone", args.staff, PHONE);
    await page.goto("/staff/compliance");
    await page.getByRole("heading", { name: "Compliance queue" }).waitFor();
    await page.getByLabel("Status").selectOption("CLEARED");
    await page.getByTestId("compliance-case").filter({ hasText: args.customer }).waitFor();
    await audit(page, "compliance queue (phone)");
    await snap(page, "queue-phone", false);
    await context.close();
    const customer = await signedIn(browser, "customer-phone", args.customer, PHONE);
    await customer.page.goto("/settings");
    await customer.page.getByTestId("kyc-status").getByText("Verified").waitFor();
    await snap(customer.page, "customer-verified-phone", false);
    await customer.context.close();
  });
  if (problems.length) throw new Error(problems.join("\n"));
} catch (error) {
  code = 1;
  reportFailure(error);
} finally {
  await browser.close();
}
process.exit(code);
